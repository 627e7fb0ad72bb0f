"""Server ports (one per server, on the tenant network, with the server's security groups)."""
from __future__ import annotations

from yunshang.openstack.tenant.base import (MARK, ApplyContext, DestroyContext, KindEngine, ReadContext,
                                            neutron_managed)
from yunshang.tenant import item


class Port(KindEngine):
    kind = "port"
    update = "in-place"            # the security groups

    def read(self, rc: ReadContext) -> None:
        port_of_server: dict[str, str] = rc.once("port_of_server", dict)  # type: ignore[assignment]
        for port in rc.ports():
            if port.device_owner and not port.device_owner.startswith("compute:"):
                continue
            rc.names[port.id] = port.name
            if port.device_id:
                port_of_server.setdefault(port.device_id, port.name)
            groups = tuple(sorted(rc.names.get(x, x) for x in port.security_group_ids or ()))
            rc.obs.add(item("port", port.name, network=rc.names.get(port.network_id, port.network_id),
                            security_groups=groups), port.id, neutron_managed(port))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        n, api = ac.spec.network, ac.conn.network
        for s in ac.spec.servers:
            c = todo.get(("port", s.port_name))
            sg_ids = [ac.ids[("security_group", x)] for x in s.security_groups]
            if c and c.action == "create":
                ac.made_neutron("port", s.port_name, api.create_port(
                    name=s.port_name, network_id=ac.ids[("network", n.name)], project_id=ac.pid,
                    fixed_ips=[{"subnet_id": ac.ids[("subnet", n.subnet_name)]}], security_group_ids=sg_ids,
                    description=MARK))
            elif c and c.action == "update":
                api.update_port(ac.ids[("port", s.port_name)], security_group_ids=sg_ids)
                ac.say(f"  updated port {s.port_name} security groups")

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        dc.wait_gone("server")
        dc.conn.network.delete_port(ident)
        return True
