"""Ansible inventory from a survey (pure): YAML-ready dict grouped by department, then business system.

Group names are Ansible-safe (``[a-z0-9_]``): ``department_public_security``
holds ``system_public_security__hukou``. Host variables are what the
playbooks read (``migrate_*``); connection variables are Ansible's own. The
SSH private key is referenced by path only (``ansible_ssh_private_key_file``),
never embedded.
"""
from __future__ import annotations

import re
from typing import Any

from yunshang.migration.survey import Survey, SurveyHost


def group_name(*parts: str) -> str:
    return "__".join(re.sub(r"[^a-z0-9_]", "_", p.lower()) for p in parts)


def host_vars(h: SurveyHost, ssh_key_file: str = "", conversion_host: str = "", operator: str = "",
              project: str = "") -> dict[str, Any]:
    v: dict[str, Any] = {
        "ansible_host": h.address,
        "ansible_port": h.ssh_port,
        "ansible_user": h.ssh_user,
        "migrate_os": h.os,
        "migrate_vcpu": h.vcpu,
        "migrate_ram_gb": h.ram_gb,
        "migrate_disk_gb": h.disk_gb,
        "migrate_data_paths": list(h.data_paths),
        "migrate_disk_image": h.disk_image,
        "migrate_services": [{"name": s.name, "port": s.port, "check": s.check} for s in h.services],
        "migrate_business_system": h.business_system,
        "migrate_department": h.department,
        "migrate_depends_on": list(h.depends_on),
        "migrate_maintenance_window": h.maintenance_window,
    }
    if ssh_key_file:
        v["ansible_ssh_private_key_file"] = ssh_key_file
    if conversion_host:
        v["migrate_conversion_host"] = conversion_host
    if operator:
        v["migrate_operator"] = operator
    if project:
        v["migrate_project"] = project
    return v


def build_inventory(survey: Survey, ssh_key_file: str = "", plan: Any | None = None) -> dict[str, Any]:
    """``all -> department_<d> -> system_<d>__<bs> -> hosts``; with a plan, also ``wave_<n>`` groups
    and each host's conversion host and destination."""
    departments: dict[str, dict[str, Any]] = {}
    for h in sorted(survey.hosts, key=lambda h: (h.department, h.business_system, h.hostname)):
        conv = op = proj = ""
        if plan is not None:
            wave = plan.wave_of(h.hostname)
            conv = wave.conversion_host(h.hostname)
            dest = plan.destination(h.hostname)
            op, proj = dest.operator, dest.project
        dgroup = departments.setdefault("department_" + group_name(h.department), {"children": {}})
        sgroup = dgroup["children"].setdefault("system_" + group_name(h.department, h.business_system), {"hosts": {}})
        sgroup["hosts"][h.hostname] = host_vars(h, ssh_key_file, conv, op, proj)
    children: dict[str, Any] = dict(departments)
    if plan is not None:
        for w in plan.waves:
            children[f"wave_{w.number}"] = {"hosts": {n: None for n in w.hosts}}
    return {"all": {"children": children}}
