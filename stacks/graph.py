"""Run the tenant program under Pulumi's official mock monitor and record what it declares.

This is NOT a preview against state: no engine, no cloud. It shows the resources the
program declares (type, logical name, operator of the provider it is bound to, inputs),
which is what ``yunshang stack graph`` prints and what the unit tests assert on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pulumi
from pulumi.runtime import mocks as pmocks

from yunshang.stackpolicy import operator_cloud
from yunshang.tenant import KIND, KINDS, Item, TenantSpec, item, normalise_rule, rule_label


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
            r.operator = operator_cloud(r.cloud) if r.cloud else None  # "telecom/dept-x" is telecom's
    return g


def declare_tenant(spec: TenantSpec, *, initial_passwords: dict | None = None) -> Graph:
    """Declare ``spec``'s tenant exactly as stacks/__main__.py does, under mocks."""
    from stacks.program import build_tenant

    return declare(lambda: build_tenant(spec, initial_passwords=initial_passwords), stack=spec.stack_name)


# --------------------------------------------------------------------------- graph -> inventory
@dataclass
class _Resolve:
    """What the per-kind readers share: the graph, ids back to names, look-up results."""

    graph: Graph
    name_of: dict[str, str]
    ext: dict[str, str]

    def of(self, kind: str, i: int = 0) -> list[Declared]:
        return self.graph.by_type(KIND[kind].pulumi_types[i])


def _quota_fields(r: Declared) -> tuple:
    return tuple(sorted((_snake(k), v) for k, v in _ints(r.inputs).items() if k not in ("projectId", "region")))


def _read_project(x: _Resolve):
    for r in x.of("project"):
        i = r.inputs
        yield item("project", i["name"], description=i.get("description", ""), tags=tuple(sorted(i.get("tags", ()))))


def _read_user(x: _Resolve):
    for r in x.of("user"):
        yield item("user", r.inputs["name"], email=(r.inputs.get("extra") or {}).get("email", ""))


def _read_role_assignment(x: _Resolve):
    return (item("role_assignment", r.name) for r in x.of("role_assignment") if not r.name.startswith("operator/"))


def _read_quota(x: _Resolve):
    for i, service in enumerate(("compute", "network", "volume")):
        for r in x.of("quota", i):
            yield Item("quota", service, _quota_fields(r))


def _read_flavor(x: _Resolve):
    for r in x.of("flavor"):
        i = _ints(r.inputs)
        yield item("flavor", i["name"], disk_gb=i["disk"], ram_mb=i["ram"], vcpus=i["vcpus"])


def _read_network(x: _Resolve):
    return (item("network", r.inputs["name"]) for r in x.of("network"))


def _read_subnet(x: _Resolve):
    for r in x.of("subnet"):
        i = r.inputs
        yield item("subnet", i["name"], cidr=i["cidr"], gateway_ip=i["gatewayIp"], network=x.name_of[i["networkId"]])


def _read_router(x: _Resolve):
    for r in x.of("router"):
        yield item("router", r.inputs["name"], external_network=x.ext[r.inputs["externalNetworkId"]])


def _read_router_interface(x: _Resolve):
    for r in x.of("router_interface"):
        yield item("router_interface", f"{x.name_of[r.inputs['routerId']]}/{x.name_of[r.inputs['subnetId']]}")


def _read_security_group(x: _Resolve):
    return (item("security_group", r.inputs["name"]) for r in x.of("security_group"))


def _read_security_group_rule(x: _Resolve):
    for r in x.of("security_group_rule"):
        i = _ints(r.inputs)
        rs = normalise_rule(i["direction"], i.get("protocol"), i.get("portRangeMin"), i.get("portRangeMax"),
                            i.get("remoteIpPrefix"), i.get("ethertype", "IPv4"))
        yield item("security_group_rule", rule_label(x.name_of[i["securityGroupId"]], rs))


def _read_server_group(x: _Resolve):
    return (item("server_group", r.inputs["name"], policy=r.inputs["policies"]) for r in x.of("server_group"))


def _read_port(x: _Resolve):
    for r in x.of("port"):
        i = r.inputs
        yield item("port", i["name"], network=x.name_of[i["networkId"]],
                   security_groups=tuple(sorted(x.name_of[g] for g in i["securityGroupIds"])))


def _read_server(x: _Resolve):
    for r in x.of("server"):
        i = r.inputs
        group = (i.get("schedulerHints") or [{}])[0].get("group")
        flavor = x.name_of[i["flavorId"]] if i.get("flavorId") else i["flavorName"]
        yield item("server", i["name"], availability_zone=i["availabilityZone"], flavor=flavor,
                   image=i["imageName"], port=x.name_of[i["networks"][0]["port"]],
                   server_group=x.name_of[group] if group else "")


def _read_volume(x: _Resolve):
    attach = {a.inputs["volumeId"]: a for a in x.of("volume", 1)}
    for r in x.of("volume"):
        a = attach.get(r.id)
        yield item("volume", r.inputs["name"], server=x.name_of[a.inputs["instanceId"]] if a else "",
                   size_gb=_ints(r.inputs["size"]))


def _read_floating_ip(x: _Resolve):
    server_of_port = {s.inputs["networks"][0]["port"]: s.name for s in x.of("server")}
    for r in x.of("floating_ip"):
        yield item("floating_ip", r.name, pool=r.inputs["pool"], server=server_of_port.get(r.inputs.get("portId"), ""))


READERS: dict[str, Callable[[_Resolve], Iterable[Item]]] = {
    name[len("_read_"):]: fn for name, fn in list(globals().items()) if name.startswith("_read_")}


def graph_inventory(g: Graph) -> frozenset[Item]:
    """The declared graph in the core's canonical (kind, name, key inputs) form (see
    ``yunshang.tenant.spec_inventory``), ids resolved back to the names they were declared with,
    kind by kind (``KINDS``; one reader per kind in ``READERS``)."""
    x = _Resolve(g, {r.id: r.name for r in g.resources},
                 {f"extnet:{a.get('name')}": a.get("name") for tok, a, _ in g.calls if tok.endswith("getNetwork")})
    return frozenset(i for k in KINDS for i in READERS[k.name](x))


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
