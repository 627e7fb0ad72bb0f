"""Read a department's tenant on one operator into a frozen ``compliance.TenantView`` (reads only).

Uses the operator's admin account from clouds.yaml (list calls filtered by
project; one os-instance-actions call per server). Nothing is changed.
"""
from __future__ import annotations

import datetime as dt


from yunshang.capacity import project_name
from yunshang.compliance import PortView, RuleView, ServerView, TenantView, VolumeView
from yunshang.errors import CloudUnavailable
from yunshang.openstack import CLOUD_ERRORS, connect
from yunshang.redact import exception_text
from yunshang.secrules import neutron_rule


def read_tenant_view(conn, department: str, operator: str) -> TenantView | None:
    """The tenant ``dept-<department>`` as seen now; None when the project does not exist there."""
    pname = project_name(department)
    project = next(iter(conn.identity.projects(name=pname)), None)
    if project is None:
        return None
    pid = project.id
    groups = list(conn.network.security_groups(project_id=pid))
    names = {g.id: g.name for g in groups}
    rules = []
    for g in groups:
        for r in g.security_group_rules or []:
            rules.append(RuleView(g.name, neutron_rule(r, names)))
    ports = [PortView(p.id, p.name or "", p.device_owner or "",
                      tuple(sorted(names.get(s, s) for s in (p.security_group_ids or []))),
                      bool(p.is_port_security_enabled) if p.is_port_security_enabled is not None else True)
             for p in conn.network.ports(project_id=pid)]
    volumes = [VolumeView(v.name or v.id, int(v.size or 0), bool(v.is_encrypted))
               for v in conn.block_storage.volumes(details=True, all_projects=True, project_id=pid)]
    servers = []
    for s in conn.compute.servers(all_projects=True, project_id=pid):
        actions = tuple((a.action or "", a.user_id or "", a.request_id or "") for a in conn.compute.server_actions(s))
        servers.append(ServerView(s.name, s.id, actions))
    return TenantView(department=department, operator=operator, project=pname, project_id=pid,
                      tags=tuple(sorted(project.tags or [])), read_at=dt.datetime.now(dt.timezone.utc),
                      rules=tuple(sorted(rules, key=lambda v: (v.group, v.rule.sort_key()))),
                      ports=tuple(sorted(ports, key=lambda p: (p.name, p.id))),
                      volumes=tuple(sorted(volumes, key=lambda v: v.name)),
                      servers=tuple(sorted(servers, key=lambda s: s.name)))


def read_department(catalog, department: str, clouds_file: str | None,
                    operators: list[str] | None = None) -> dict[str, TenantView | None]:
    """Views of the department's tenant on each operator it holds a contract with (None = no tenant)."""
    dept = catalog.department(department)
    ops = sorted({c.provider for c in dept.contracts} & set(operators or [p.name for p in catalog.providers]))
    out: dict[str, TenantView | None] = {}
    for op in ops:
        prov = catalog.provider(op)
        conn = connect(prov.cloud, clouds_file)
        try:
            out[op] = read_tenant_view(conn, department, op)
        except CLOUD_ERRORS as exc:
            first = exception_text(exc, limit=200)
            raise CloudUnavailable(f"operator {op} (cloud {prov.cloud}): reading {department}'s tenant failed: "
                                   f"{type(exc).__name__}: {first}") from None
        finally:
            conn.close()
    return out
