"""Security groups and their rules (rules in the one normal form of ``yunshang.secrules``)."""
from __future__ import annotations

from yunshang.openstack.tenant.base import (MARK, NEUTRON_TAG, ApplyContext, DestroyContext, KindEngine, ReadContext,
                                            desc_managed)
from yunshang.secrules import neutron_rule, rule_label
from yunshang.tenant import item


def _groups(rc: ReadContext) -> list:
    """The project's groups but Neutron's own ``default``, with their names known."""
    def load():
        out = []
        for g in rc.conn.network.security_groups(project_id=rc.pid):
            rc.names[g.id] = g.name
            if g.name != "default":
                out.append(g)
        return out
    return rc.once("security_groups", load)  # type: ignore[return-value]


def _managed(g) -> bool:
    return desc_managed(g) or NEUTRON_TAG in (g.tags or [])


class SecurityGroup(KindEngine):
    kind = "security_group"
    deleter = ("network", "delete_security_group")

    def read(self, rc: ReadContext) -> None:
        for g in _groups(rc):
            rc.obs.add(item("security_group", g.name), g.id, _managed(g))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        api = ac.conn.network
        for g in ac.spec.security_groups:
            if ("security_group", g.name) in todo:
                desc = g.description if g.description.startswith(MARK) else f"{MARK} {g.description}"
                sg = api.create_security_group(name=g.name, description=desc, project_id=ac.pid)
                for r in sg.security_group_rules or []:  # Neutron's default egress rules: the spec lists all
                    api.delete_security_group_rule(r["id"])
                ac.made_neutron("security_group", g.name, sg)



class SecurityGroupRule(KindEngine):
    kind = "security_group_rule"   # inside a group yunshang made, converged exactly (extra rules deleted)

    def read(self, rc: ReadContext) -> None:
        for g in _groups(rc):
            for r in g.security_group_rules or []:
                rc.obs.add(item("security_group_rule", rule_label(g.name, neutron_rule(r, rc.names))), r["id"],
                           _managed(g))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        api = ac.conn.network
        for key, c in todo.items():
            if c.kind == "security_group_rule" and c.action == "delete":
                api.delete_security_group_rule(ac.ids[key])
                ac.say(f"  deleted extra rule {c.name}")
        for g in ac.spec.security_groups:
            for r in g.rules:
                label = rule_label(g.name, r)
                if ("security_group_rule", label) in todo:
                    rule = api.create_security_group_rule(
                        security_group_id=ac.ids[("security_group", g.name)], direction=r.direction,
                        ethertype=r.ethertype, protocol=r.protocol, port_range_min=r.port_min,
                        port_range_max=r.port_max, remote_ip_prefix=r.remote_cidr, description=r.description,
                        project_id=ac.pid)
                    ac.made("security_group_rule", label, rule.id)

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        return False  # go with their group
