"""The Pulumi program: one stack per department per operator (`<department>.<operator>`).

Stack config holds only inputs (namespace `yunshang`):
  catalog          path of the catalog directory (relative to the repo root or absolute)
  department       department name
  operator         operator name (its `cloud:` is the clouds.yaml entry the providers use)
  plan             id of the recorded plan to build (`yunshang plan --save`, `request approve`),
                   read from the lifecycle store ($YUNSHANG_DB); never re-placed
  planHash         that plan's content hash (a plan that does not match is refused)
  managementCidr   optional, the center's management CIDR (MLPS baselines)
  initialPasswords optional SECRET object {user: password} (pulumi config set --secret --path)
The program asks the core for the TenantSpec of that plan and builds DepartmentTenant from it.
"""
from __future__ import annotations

import os
import sys

import pulumi

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run by the pulumi engine with cwd = stacks/
    sys.path.insert(0, _ROOT)

from stacks.program import build_tenant, initial_passwords, spec_from_config  # noqa: E402

cfg = pulumi.Config("yunshang")
spec = spec_from_config(
    catalog=cfg.require("catalog"), department=cfg.require("department"), operator=cfg.require("operator"),
    plan=cfg.require("plan"), plan_hash=cfg.require("planHash"), management_cidr=cfg.get("managementCidr"),
    root=_ROOT)
build_tenant(spec, initial_passwords=initial_passwords())
