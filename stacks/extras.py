"""What the Pulumi state cannot see: security-group rules added by hand to the stack's groups.

A `SecGroup` resource does not model its rules; each rule yunshang wants is its own
`SecGroupRule`. A rule someone adds by hand in Horizon is therefore invisible to `pulumi refresh`.
yunshang's groups are exclusive (created with delete_default_rules; every rule comes from the
spec), so `stack preview --refresh` / `stack refresh` report such rules and `stack up` deletes
them, in groups of this stack only (never a rule elsewhere).
"""
from __future__ import annotations

from typing import Optional

from yunshang.tenant import TenantSpec, normalise_rule, rule_label


def extra_rules(spec: TenantSpec, clouds_file: Optional[str]) -> list[dict]:
    """[{group, rule, id}] of rules in the stack's security groups that the spec does not want."""
    from yunshang.openstack import connect

    conn = connect(spec.cloud, clouds_file)
    project = conn.identity.find_project(spec.project.name)
    if project is None:
        return []
    out = []
    for g in spec.security_groups:
        want = {r.key() for r in g.rules}
        for sg in conn.network.security_groups(name=g.name, project_id=project.id):
            for r in conn.network.security_group_rules(security_group_id=sg.id):
                rs = normalise_rule(r.direction, r.protocol, r.port_range_min, r.port_range_max,
                                    r.remote_ip_prefix if not r.remote_group_id else None, r.ether_type)
                if r.remote_group_id:
                    out.append({"group": g.name, "rule": f"{r.direction} from group {r.remote_group_id}", "id": r.id})
                elif rs.key() not in want:
                    out.append({"group": g.name, "rule": rule_label(g.name, rs), "id": r.id})
    return sorted(out, key=lambda x: (x["group"], x["rule"]))


def delete_extra_rules(spec: TenantSpec, clouds_file: Optional[str]) -> list[dict]:
    from yunshang.openstack import connect

    extras = extra_rules(spec, clouds_file)
    if extras:
        conn = connect(spec.cloud, clouds_file)
        for x in extras:
            conn.network.delete_security_group_rule(x["id"], ignore_missing=True)
    return extras
