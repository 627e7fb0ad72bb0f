"""Floating IPs, associated with their server's port (the name is kept in the description)."""
from __future__ import annotations

from yunshang.openstack.tenant.base import MARK, ApplyContext, KindEngine, ReadContext
from yunshang.tenant import item


class FloatingIp(KindEngine):
    kind = "floating_ip"
    update = "in-place"            # re-associated
    deleter = ("network", "delete_ip")

    def read(self, rc: ReadContext) -> None:
        server_name: dict = rc.once("server_name", dict)  # type: ignore[assignment]
        server_of_port = {p.id: server_name.get(p.device_id, "") for p in rc.ports()}
        for ip in rc.conn.network.ips(project_id=rc.pid):
            d = ip.description or ""
            name = d[len(MARK) + 1:] if d.startswith(MARK + " ") else (d or ip.floating_ip_address)
            rc.obs.add(item("floating_ip", name, pool=rc.ext_name(ip.floating_network_id),
                            server=server_of_port.get(ip.port_id, "") if ip.port_id else ""),
                       ip.id, d.startswith(MARK))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        if not any(c.kind == self.kind and c.action in ("create", "update") for c in todo.values()):
            return
        pc = ac.project_conn()
        for f in ac.spec.floating_ips:
            c = todo.get(("floating_ip", f.name))
            port_id = ac.ids[("port", f"{f.server}-port")]
            if c and c.action == "create":
                ip = pc.network.create_ip(floating_network_id=ac.pre["external_network_id"], port_id=port_id,
                                          description=f"{MARK} {f.name}")
                ac.made("floating_ip", f.name, ip.id)
            elif c and c.action == "update":
                ac.conn.network.update_ip(ac.ids[("floating_ip", f.name)], port_id=port_id)
                ac.say(f"  re-associated floating ip {f.name}")

