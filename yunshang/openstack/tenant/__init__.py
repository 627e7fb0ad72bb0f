"""The openstacksdk tenant engine: apply (converge), verify (drift), adopt, destroy.

The Pulumi engine cannot run on air-gapped sites; this applier builds the same TenantSpec
through openstacksdk, bounded to what the spec names. One small module per kind family
(``identity``, ``quota``, ``flavor``, ``network``, ``secgroup``, ``port``, ``compute``,
``volume``, ``floating_ip``) on a shared base (``base``): each kind's engine reads it into the
core's canonical inventory, creates/updates it, and deletes it; ``kinds`` lists them in the
core's order (``yunshang.tenant.KINDS``) and ``engine`` runs them:

* plan first: the cloud is read into the canonical inventory (kind, name, key inputs) and diffed
  against ``spec_inventory(spec)``; the change list is printed before anything runs;
* creates what is missing, updates what differs where OpenStack allows it in place, and never
  deletes what it did not create (inside a security group yunshang created, rules are converged
  exactly; anything else extra is reported, not touched);
* every object it creates is marked: Keystone project tags (``yunshang`` ...), descriptions
  starting ``yunshang-managed``, Neutron tags ``yunshang``, server/volume metadata
  ``managed-by: yunshang``, flavors named ``dept-<department>.*``;
* each creation is appended (fsync'd) to a journal ``<state>/journal/<operator>/<department>.json``
  before the next step, so a failed apply leaves a record; the next apply resumes (it converges)
  and ``destroy`` removes what the journal and the markers name.

Bad input (unknown department/operator, no contract, unreachable cloud, refused credentials,
missing image/external network/role) is found by ``preflight`` before the first write.
"""
from __future__ import annotations

from yunshang.openstack.tenant.adopt import adopt_project, import_file
from yunshang.openstack.tenant.base import (CHANGE_TIMEOUT_SECONDS, MARK, NEUTRON_TAG, WAIT_SECONDS, ApplyFailed,
                                            Journal, Observed, find_project, project_connection, quota_fields)
from yunshang.openstack.tenant.engine import (AdmissionHandle, ApplyResult, Change, admit_live, apply_spec,
                                              apply_tenant, destroy_tenant, open_operator, plan_changes, preflight,
                                              quiet_sdk_warnings, read_inventory, read_tenant, verify_tenant)
from yunshang.openstack.tenant.kinds import ENGINE, ENGINES
from yunshang.tenant import DESTROY_ORDER, PULUMI_TYPES

__all__ = ["CHANGE_TIMEOUT_SECONDS", "DESTROY_ORDER", "ENGINE", "ENGINES", "MARK", "NEUTRON_TAG", "PULUMI_TYPES",
           "WAIT_SECONDS", "AdmissionHandle", "ApplyFailed", "ApplyResult", "Change", "Journal", "Observed",
           "adopt_project", "admit_live", "apply_spec", "apply_tenant", "destroy_tenant", "find_project",
           "import_file", "open_operator", "plan_changes", "preflight", "project_connection", "quiet_sdk_warnings",
           "quota_fields", "read_inventory", "read_tenant", "verify_tenant"]
