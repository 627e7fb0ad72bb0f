"""Run the tenant program under Pulumi's official mock monitor and record what it declares.

This is NOT a preview against state: no engine, no cloud. It shows the resources the
program declares (type, logical name, operator of the provider it is bound to, inputs),
which is what ``yunshang stack graph`` prints and what the unit tests assert on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi
from pulumi.runtime import mocks as pmocks

from yunshang.tenant import TenantSpec, rule_label, normalise_rule


@dataclass
class Declared:
    type: str
    name: str
    urn: str
    id: str
    inputs: dict
    provider: str | None          # "<provider URN>::<id>" as the engine would pass it
    operator: str | None = None   # resolved from the provider's `cloud` input
    cloud: str | None = None


@dataclass
class Graph:
    resources: list[Declared] = field(default_factory=list)
    calls: list[tuple[str, dict, str]] = field(default_factory=list)

    def by_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def providers(self) -> list[Declared]:
        return [r for r in self.resources if r.type.startswith("pulumi:providers:")]


class RecordingMocks(pmocks.Mocks):
    """Official Mocks subclass: returns inputs as outputs with stable ids, records everything."""

    def __init__(self, project: str, stack: str):
        self.graph = Graph()
        self.project, self.stack = project, stack

    def new_resource(self, args: pmocks.MockResourceArgs):
        short = args.typ.rsplit(":", 1)[-1]
        rid = f"{short}:{args.name}"
        urn = f"urn:pulumi:{self.stack}::{self.project}::{args.typ}::{args.name}"
        outputs = dict(args.inputs)
        if args.typ == "openstack:networking/floatingIp:FloatingIp":
            outputs.setdefault("address", "203.0.113.10")
        self.graph.resources.append(Declared(args.typ, args.name, urn, rid, dict(args.inputs), args.provider))
        return rid, outputs

    def call(self, args: pmocks.MockCallArgs):
        self.graph.calls.append((args.token, dict(args.args), args.provider))
        a = dict(args.args)
        if args.token == "openstack:identity/getRole:getRole":
            return {"id": f"role:{a.get('name')}", "name": a.get("name")}, []
        if args.token == "openstack:networking/getNetwork:getNetwork":
            return {"id": f"extnet:{a.get('name')}", "name": a.get("name")}, []
        if args.token == "openstack:identity/getAuthScope:getAuthScope":
            return {"id": "operator", "userId": "user:operator", "userName": "operator"}, []
        return {}, []


class _UrnMonitor(pmocks.MockMonitor):
    """The official mock monitor, also remembering each registration's real URN (parent chain)."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.urns: dict[tuple[str, str], str] = {}

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        self.urns[(request.type, request.name)] = self.make_urn(request.parent, request.type, request.name)
        return super().RegisterResource(request)


def declare(build: Callable[[], Any], *, project: str = "yunshang", stack: str = "mock") -> Graph:
    """Run ``build()`` (which creates resources) under the mock monitor; return what it declared."""
    mocks = RecordingMocks(project, stack)
    monitor = _UrnMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)

    @pulumi.runtime.test
    def run():
        build()
        return pulumi.Output.from_input(None)

    run()
    g = mocks.graph
    for r in g.resources:
        r.urn = monitor.urns.get((r.type, r.name), r.urn)
    clouds = {f"{p.urn}::{p.id}": p.inputs.get("cloud") for p in g.providers()}
    for r in g.resources:
        if r.provider is not None:
            r.cloud = clouds.get(r.provider)
            r.operator = r.cloud
    return g


def declare_tenant(spec: TenantSpec, *, initial_passwords: dict | None = None) -> Graph:
    """Declare ``spec``'s tenant exactly as stacks/__main__.py does, under mocks."""
    from stacks.program import build_tenant

    return declare(lambda: build_tenant(spec, initial_passwords=initial_passwords), stack=spec.stack_name)


# --------------------------------------------------------------------------- graph -> inventory
def graph_inventory(g: Graph) -> frozenset[tuple]:
    """The declared graph in the core's canonical (kind, name, key inputs) form (see
    ``yunshang.tenant.spec_inventory``), ids resolved back to the names they were declared with."""
    name_of = {r.id: r.name for r in g.resources}
    ext = {f"extnet:{a.get('name')}": a.get("name") for tok, a, _ in g.calls if tok.endswith("getNetwork")}
    out: set[tuple] = set()
    servers_by_port: dict[str, str] = {}
    for r in g.by_type("openstack:compute/instance:Instance"):
        servers_by_port[name_of[r.inputs["networks"][0]["port"]]] = r.name
    for r in g.resources:
        i, t = _ints(r.inputs), r.type
        if t == "openstack:identity/project:Project":
            out.add(("project", i["name"], (("description", i.get("description", "")),
                                            ("tags", tuple(sorted(i.get("tags", ())))))))
        elif t == "openstack:identity/user:User":
            out.add(("user", i["name"], (("email", (i.get("extra") or {}).get("email", "")),)))
        elif t == "openstack:identity/roleAssignment:RoleAssignment":
            if not r.name.startswith("operator/"):
                out.add(("role_assignment", r.name, ()))
        elif t == "openstack:compute/quotaSetV2:QuotaSetV2":
            out.add(("quota", "compute", tuple(sorted((_snake(k), v) for k, v in i.items() if k not in ("projectId", "region")))))
        elif t == "openstack:networking/quotaV2:QuotaV2":
            out.add(("quota", "network", tuple(sorted((_snake(k), v) for k, v in i.items() if k not in ("projectId", "region")))))
        elif t == "openstack:blockstorage/quoteSetV3:QuoteSetV3":
            out.add(("quota", "volume", tuple(sorted((_snake(k), v) for k, v in i.items() if k not in ("projectId", "region")))))
        elif t == "openstack:compute/flavor:Flavor":
            out.add(("flavor", i["name"], (("disk_gb", i["disk"]), ("ram_mb", i["ram"]), ("vcpus", i["vcpus"]))))
        elif t == "openstack:networking/network:Network":
            out.add(("network", i["name"], ()))
        elif t == "openstack:networking/subnet:Subnet":
            out.add(("subnet", i["name"], (("cidr", i["cidr"]), ("gateway_ip", i["gatewayIp"]),
                                           ("network", name_of[i["networkId"]]))))
        elif t == "openstack:networking/router:Router":
            out.add(("router", i["name"], (("external_network", ext[i["externalNetworkId"]]),)))
        elif t == "openstack:networking/routerInterface:RouterInterface":
            out.add(("router_interface", f"{name_of[i['routerId']]}/{name_of[i['subnetId']]}", ()))
        elif t == "openstack:networking/secGroup:SecGroup":
            out.add(("security_group", i["name"], ()))
        elif t == "openstack:networking/secGroupRule:SecGroupRule":
            rs = normalise_rule(i["direction"], i.get("protocol"), i.get("portRangeMin"), i.get("portRangeMax"),
                                i.get("remoteIpPrefix"), i.get("ethertype", "IPv4"))
            out.add(("security_group_rule", rule_label(name_of[i["securityGroupId"]], rs), ()))
        elif t == "openstack:compute/serverGroup:ServerGroup":
            out.add(("server_group", i["name"], (("policy", i["policies"]),)))
        elif t == "openstack:networking/port:Port":
            out.add(("port", i["name"], (("network", name_of[i["networkId"]]),
                                         ("security_groups", tuple(sorted(name_of[x] for x in i["securityGroupIds"]))))))
        elif t == "openstack:compute/instance:Instance":
            hints = i.get("schedulerHints") or [{}]
            group = hints[0].get("group")
            out.add(("server", i["name"], (("availability_zone", i["availabilityZone"]), ("flavor", i["flavorName"]),
                                           ("image", i["imageName"]), ("port", name_of[i["networks"][0]["port"]]),
                                           ("server_group", name_of[group] if group else ""))))
        elif t == "openstack:blockstorage/volume:Volume":
            attach = [a for a in g.by_type("openstack:compute/volumeAttach:VolumeAttach") if a.inputs["volumeId"] == r.id]
            out.add(("volume", i["name"], (("server", name_of[attach[0].inputs["instanceId"]] if attach else ""),
                                           ("size_gb", i["size"]))))
        elif t == "openstack:networking/floatingIp:FloatingIp":
            out.add(("floating_ip", r.name, (("pool", i["pool"]), ("server", servers_by_port.get(name_of.get(i.get("portId"), ""), "")))))
    return frozenset(out)


def _ints(v):
    """Protobuf hands numbers back as floats: 22.0 -> 22 (recursively)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


def _snake(k: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in k)


def graph_rows(g: Graph) -> list[dict]:
    """For `stack graph`: type, name, operator and the key inputs of every declared resource."""
    rows = []
    for r in g.resources:
        if r.type == "pulumi:pulumi:Stack":
            continue
        keep = {k: v for k, v in r.inputs.items() if k not in ("userData", "password") and v not in (None, "", [], {})}
        if "userData" in r.inputs:
            keep["userData"] = f"<{len(r.inputs['userData'] or '')} bytes>"
        if "password" in r.inputs:
            keep["password"] = "<secret>"
        rows.append({"type": r.type, "name": r.name, "operator": r.operator or r.inputs.get("cloud"),
                     "inputs": _ints(keep)})
    return rows
