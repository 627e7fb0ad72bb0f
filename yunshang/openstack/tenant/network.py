"""Neutron topology kinds: network, subnet, router, router_interface."""
from __future__ import annotations

from yunshang.openstack.tenant.base import (MARK, ApplyContext, DestroyContext, KindEngine, ReadContext,
                                            neutron_managed)
from yunshang.tenant import item


class Network(KindEngine):
    kind = "network"
    deleter = ("network", "delete_network")

    def read(self, rc: ReadContext) -> None:
        for n in rc.conn.network.networks(project_id=rc.pid):
            rc.names[n.id] = n.name
            rc.obs.add(item("network", n.name), n.id, neutron_managed(n))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        n, api = ac.spec.network, ac.conn.network
        if ("network", n.name) in todo:
            ac.made_neutron("network", n.name, api.create_network(name=n.name, project_id=ac.pid, description=MARK))



class Subnet(KindEngine):
    kind = "subnet"
    deleter = ("network", "delete_subnet")

    def read(self, rc: ReadContext) -> None:
        for s in rc.conn.network.subnets(project_id=rc.pid):
            rc.names[s.id] = s.name
            rc.obs.add(item("subnet", s.name, cidr=s.cidr, gateway_ip=s.gateway_ip or "",
                            network=rc.names.get(s.network_id, s.network_id)), s.id, neutron_managed(s))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        n, api = ac.spec.network, ac.conn.network
        c = todo.get(("subnet", n.subnet_name))
        if c and c.action == "create":
            ac.made_neutron("subnet", n.subnet_name, api.create_subnet(
                name=n.subnet_name, network_id=ac.ids[("network", n.name)], ip_version=4, cidr=n.cidr,
                gateway_ip=n.gateway_ip, project_id=ac.pid, description=MARK))



class Router(KindEngine):
    kind = "router"
    update = "in-place"            # the external gateway

    def read(self, rc: ReadContext) -> None:
        for r in rc.conn.network.routers(project_id=rc.pid):
            rc.names[r.id] = r.name
            gw = (r.external_gateway_info or {}).get("network_id")
            rc.obs.add(item("router", r.name, external_network=rc.ext_name(gw)), r.id, neutron_managed(r))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        n, api = ac.spec.network, ac.conn.network
        c = todo.get(("router", n.router_name))
        gw = {"network_id": ac.pre["external_network_id"]}
        if c and c.action == "create":
            ac.made_neutron("router", n.router_name, api.create_router(
                name=n.router_name, project_id=ac.pid, description=MARK, external_gateway_info=gw))
        elif c and c.action == "update":
            api.update_router(ac.ids[("router", n.router_name)], external_gateway_info=gw)
            ac.say(f"  updated router {n.router_name} gateway")

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        dc.conn.network.update_router(ident, external_gateway_info={})
        dc.conn.network.delete_router(ident)
        return True


class RouterInterface(KindEngine):
    kind = "router_interface"      # named "<router>/<subnet>"; its id is the interface port's

    def read(self, rc: ReadContext) -> None:
        for port in rc.ports():
            if port.device_owner == "network:router_interface":
                for fip in port.fixed_ips or []:
                    rname = rc.names.get(port.device_id, port.device_id)
                    sname = rc.names.get(fip.get("subnet_id"), "?")
                    rc.obs.add(item("router_interface", f"{rname}/{sname}"), port.id)

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        n = ac.spec.network
        name = f"{n.router_name}/{n.subnet_name}"
        if ("router_interface", name) in todo:
            r = ac.conn.network.add_interface_to_router(ac.ids[("router", n.router_name)],
                                                        subnet=ac.ids[("subnet", n.subnet_name)])
            ac.made("router_interface", name, r.get("port_id", ""))

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        router = dc.obs.ids[("router", name.split("/", 1)[0])]
        dc.conn.network.remove_interface_from_router(router, port=ident)
        return True
