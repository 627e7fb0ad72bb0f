"""The tenant spec: what one department's tenant on one operator consists of.

Pure and deterministic: ``tenant_spec(catalog, plan, department, operator)``
derives a frozen ``TenantSpec`` from the catalog and an approved placement
plan. Both engines (the Pulumi program in ``stacks/`` and the openstacksdk
applier in ``yunshang/openstack/tenant/``) build exactly this, nothing more.

Rules (also in docs/tenants.md):

* Headroom: every quota is ``need + ceil(need x HEADROOM_RATIO)`` (25 %),
  where ``need`` counts what the spec itself creates (for Neutron also the
  project's ``default`` security group and its 4 rules, the two default
  egress rules Neutron adds to every new group before yunshang replaces them,
  and the router-interface and DHCP ports).
* CIDRs: 10.0.0.0/9 is cut into /20 blocks, one per department
  (``Department.cidr_index`` 1..2047, or when unset (0) crc32(name) mod 2047 + 1); inside it one /24 per operator, by the
  operator's position in providers.yaml (append new operators at the end).
  10.128.0.0/9 is left to the center (its management CIDR, default
  10.250.0.0/24 = the bastion hosts). No two tenants of any departments overlap.
* MLPS baselines: see ``baseline_rules`` and ``template_rules``.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from yunshang.capacity import (CONTRACT_TAG_PREFIX, DEPARTMENT_TAG_PREFIX, MLPS_TAG_PREFIX, PROJECT_TAG,
                               project_name)
from yunshang.errors import NotFound, YunshangError
from yunshang.model import Catalog, Department, Plan, Provider, Template
from yunshang.secrules import (ADMIN_PORTS, WORLD, RuleSpec, fmt_rule, normalise_rule, rule_label,  # noqa: F401
                               sort_rules)
from yunshang.templates import render_user_data

HEADROOM_RATIO = 0.25
TENANT_SUPERNET = ipaddress.IPv4Network("10.0.0.0/9")
DEPARTMENT_PREFIXLEN = 20          # one /20 per department
OPERATOR_PREFIXLEN = 24            # one /24 per operator inside it
MAX_CIDR_INDEX = 2047              # 2048 /20 blocks in 10.0.0.0/9; 10.128.0.0/9 is never a tenant's
DEFAULT_MANAGEMENT_CIDR = "10.250.0.0/24"   # the center's bastion hosts (sample catalog)
MANAGED_BY = "yunshang"            # value of managed-by markers (description prefix, metadata)
# `ha` spreads a request's instances over zones (a hard placement constraint); within a zone
# the spread over hosts is best effort: hard anti-affinity would need as many compute hosts as
# instances in the zone and fail the whole build (NoValidHost) where an operator has fewer.
HA_SERVER_GROUP_POLICY = "soft-anti-affinity"
OPERATOR_ACCESS_ROLE = "admin"     # role the engine's own account gets on the project to act inside it


class NoValidContract(NotFound):
    """The department holds no contract with the operator valid on the date."""


class CidrConflict(YunshangError):
    exit_code = 2


# --------------------------------------------------------------------------- spec records
@dataclass(frozen=True)
class SecurityGroupSpec:
    name: str
    description: str
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True)
class ProjectSpec:
    name: str
    description: str
    tags: tuple[str, ...]
    domain: str = "default"


@dataclass(frozen=True)
class UserSpec:
    name: str                    # Keystone user name: "<department>.<catalog user name>"
    email: str
    description: str


@dataclass(frozen=True)
class RoleAssignmentSpec:
    user: str
    role: str


@dataclass(frozen=True)
class QuotaSpec:
    """Only the fields named here are set; everything else keeps the cloud's default."""

    compute: tuple[tuple[str, int], ...]
    network: tuple[tuple[str, int], ...]
    volume: tuple[tuple[str, int], ...]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"compute": dict(self.compute), "network": dict(self.network), "volume": dict(self.volume)}


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet_name: str
    cidr: str
    gateway_ip: str
    router_name: str
    external_network: str


@dataclass(frozen=True)
class FlavorSpec:
    """A private flavor of the project (Nova flavor names are cloud-wide, so prefixed)."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class ServerGroupSpec:
    name: str
    policy: str                  # soft-anti-affinity (see HA_SERVER_GROUP_POLICY)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    request: str
    role: str                    # primary | standby
    template: str
    flavor: str
    image: str
    availability_zone: str
    server_group: str | None
    security_groups: tuple[str, ...]
    port_name: str
    user_data: str
    vcpu: int
    ram_gb: int
    disk_gb: int


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size_gb: int
    server: str                  # attached to


@dataclass(frozen=True)
class FloatingIpSpec:
    name: str                    # kept in the floating IP's description
    server: str                  # associated with the server's port
    pool: str                    # external network


@dataclass(frozen=True)
class TenantSpec:
    department: str
    operator: str
    cloud: str
    date: dt.date
    mlps_level: int
    contracts: tuple[str, ...]
    project: ProjectSpec
    users: tuple[UserSpec, ...]
    role_assignments: tuple[RoleAssignmentSpec, ...]
    quotas: QuotaSpec
    flavors: tuple[FlavorSpec, ...]
    network: NetworkSpec
    security_groups: tuple[SecurityGroupSpec, ...]
    server_groups: tuple[ServerGroupSpec, ...]
    servers: tuple[ServerSpec, ...]
    volumes: tuple[VolumeSpec, ...]
    floating_ips: tuple[FloatingIpSpec, ...]
    management_cidr: str = DEFAULT_MANAGEMENT_CIDR
    notes: tuple[str, ...] = ()  # rewrites the MLPS baseline made to template rules
    plan_id: int | None = None   # the recorded plan it was derived from (yunshang.plans), when one
    plan_hash: str = ""          # that plan's content hash

    @property
    def stack_name(self) -> str:
        return f"{self.department}.{self.operator}"

    def need_by_zone(self) -> dict[str, dict[str, int]]:
        """vcpu/ram_gb/disk_gb this tenant's servers need per availability zone."""
        out: dict[str, dict[str, int]] = {}
        for s in self.servers:
            z = out.setdefault(s.availability_zone, {"vcpu": 0, "ram_gb": 0, "disk_gb": 0})
            z["vcpu"] += s.vcpu
            z["ram_gb"] += s.ram_gb
            z["disk_gb"] += s.disk_gb
        return dict(sorted(out.items()))


# --------------------------------------------------------------------------- rules
def headroom(need: int, ratio: float = HEADROOM_RATIO) -> int:
    """Quota for ``need``: need + ceil(need x ratio)."""
    return need + math.ceil(need * ratio)


def cidr_index_of(department: Department) -> int:
    """The department's /20 block number: its ``cidr_index`` when set (1..2047); when left at
    0 (unset), a stable number derived from its name (crc32 mod 2047 + 1), so adding or
    renaming other departments never moves it. Clashes are reported by ``check_cidr_indexes``."""
    if department.cidr_index:
        return department.cidr_index
    return zlib.crc32(department.name.encode()) % MAX_CIDR_INDEX + 1


def tenant_cidr(catalog: Catalog, department: Department, provider: Provider) -> ipaddress.IPv4Network:
    """The department's /24 on this operator: /20 block ``cidr_index``, /24 slot = operator position."""
    if not 0 <= department.cidr_index <= MAX_CIDR_INDEX:
        raise CidrConflict(f"department {department.name}: cidr_index {department.cidr_index} "
                           f"outside 1..{MAX_CIDR_INDEX}")
    slot = [p.name for p in catalog.providers].index(provider.name)
    per_block = 2 ** (OPERATOR_PREFIXLEN - DEPARTMENT_PREFIXLEN)
    if slot >= per_block:
        raise CidrConflict(f"operator {provider.name}: position {slot} in providers.yaml exceeds the "
                           f"{per_block} /24 slots of a department block")
    block = _nth_subnet(TENANT_SUPERNET, DEPARTMENT_PREFIXLEN, cidr_index_of(department))
    return _nth_subnet(block, OPERATOR_PREFIXLEN, slot)


def _nth_subnet(net: ipaddress.IPv4Network, prefixlen: int, n: int) -> ipaddress.IPv4Network:
    size = 2 ** (32 - prefixlen)
    return ipaddress.IPv4Network((int(net.network_address) + n * size, prefixlen))


def check_cidr_indexes(catalog: Catalog) -> None:
    """Every department needs its own cidr_index; duplicates would overlap tenants."""
    seen: dict[int, str] = {}
    clashes = []
    for d in sorted(catalog.departments, key=lambda d: d.name):
        i = cidr_index_of(d)
        if i in seen:
            clashes.append(f"{d.name} and {seen[i]} share CIDR block {i} "
                           f"(set a distinct `cidr_index:` in departments/{d.name}.yaml)")
        seen.setdefault(i, d.name)
    if clashes:
        raise CidrConflict("tenant CIDRs would overlap: " + "; ".join(clashes))


def _split_out_ports(rule: RuleSpec, ports: Iterable[int]) -> list[RuleSpec]:
    """``rule`` minus the given tcp ports (udp/icmp parts of an 'any' rule kept)."""
    ports = sorted(set(ports))
    if rule.protocol is None:  # any: keep udp and icmp whole, split tcp
        out = [normalise_rule(rule.direction, p, None, None, rule.remote_cidr, rule.ethertype, rule.description)
               for p in ("udp", "icmp")]
        tcp = normalise_rule(rule.direction, "tcp", None, None, rule.remote_cidr, rule.ethertype, rule.description)
        return out + _split_out_ports(tcp, ports)
    lo = rule.port_min if rule.port_min is not None else 1
    hi = rule.port_max if rule.port_max is not None else 65535
    pieces, start = [], lo
    for p in ports:
        if lo <= p <= hi:
            if start <= p - 1:
                pieces.append((start, p - 1))
            start = p + 1
    if start <= hi:
        pieces.append((start, hi))
    return [normalise_rule(rule.direction, rule.protocol, a, b, rule.remote_cidr, rule.ethertype, rule.description)
            for a, b in pieces]


def _within(cidr: str | None, container: str) -> bool:
    if cidr is None:
        return False
    a, b = ipaddress.ip_network(cidr), ipaddress.ip_network(container)
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def baseline_rules(level: int, tenant_cidr_: str, management_cidr: str) -> tuple[RuleSpec, ...]:
    """The MLPS baseline group every server gets.

    All levels: admin ports 22/3389/5900/6443 (tcp) from the management CIDR;
    anything from inside the tenant's own subnet.
    Level <= 2: ICMP from anywhere; egress any (IPv4).
    Level >= 3: ICMP only from the management CIDR; egress only to the tenant
    subnet and the management CIDR (the template's egress group adds what the
    system needs, nothing else leaves).
    """
    rules = [normalise_rule("ingress", "tcp", p, p, management_cidr, description=f"admin port {p} from management")
             for p in ADMIN_PORTS]
    rules.append(normalise_rule("ingress", None, None, None, tenant_cidr_, description="within the tenant subnet"))
    if level <= 2:
        rules.append(normalise_rule("ingress", "icmp", None, None, WORLD, description="icmp"))
        rules.append(normalise_rule("egress", None, None, None, WORLD, description="egress any (MLPS<=2)"))
    else:
        rules.append(normalise_rule("ingress", "icmp", None, None, management_cidr, description="icmp from management"))
        rules.append(normalise_rule("egress", None, None, None, tenant_cidr_, description="egress within the tenant"))
        rules.append(normalise_rule("egress", None, None, None, management_cidr, description="egress to management"))
    return sort_rules(rules)


def template_rules(template: Template, level: int, management_cidr: str) -> tuple[tuple[RuleSpec, ...], tuple[str, ...]]:
    """The template's ingress/egress rules under the MLPS baseline, and notes on what was changed.

    Level 2: admin ports open to the world (0.0.0.0/0) are cut out of the rule.
    Level 3: admin ports from anywhere outside the management CIDR are cut out.
    Level 4: as 3, and ingress from the world is dropped entirely.
    Egress: level <= 2 egress is any already (baseline), template egress kept as
    written; level >= 3 only the template's egress rules leave the tenant.
    """
    out: list[RuleSpec] = []
    notes: list[str] = []
    for direction, rules in (("ingress", template.ingress), ("egress", template.egress)):
        for r in rules:
            rs = normalise_rule(direction, r.protocol, r.port_min, r.port_max, r.remote_cidr,
                                description=r.description)
            if direction == "ingress":
                if level >= 4 and rs.world_open:
                    notes.append(f"template {template.name}: dropped world-open ingress {fmt_rule(rs)} (MLPS 4)")
                    continue
                outside = rs.world_open if level <= 2 else not _within(rs.remote_cidr, management_cidr)
                hit = [p for p in ADMIN_PORTS if rs.covers_port(p)]
                if outside and hit:
                    notes.append(f"template {template.name}: admin ports {','.join(map(str, hit))} cut out of "
                                 f"{fmt_rule(rs)} (MLPS {level}: admin ports only from management)")
                    out.extend(_split_out_ports(rs, hit))
                    continue
            out.append(rs)
    return sort_rules(out), tuple(notes)


# --------------------------------------------------------------------------- the spec
def tenant_spec(catalog: Catalog, plan: Plan, department: str, operator: str, *,
                management_cidr: str = DEFAULT_MANAGEMENT_CIDR) -> TenantSpec:
    """The TenantSpec of ``department`` on ``operator`` for the plan's date."""
    try:
        dept = catalog.department(department)
    except KeyError:
        raise NotFound(f"unknown department {department!r} (catalog {catalog.root}: "
                       f"{', '.join(sorted(d.name for d in catalog.departments))})") from None
    try:
        prov = catalog.provider(operator)
    except KeyError:
        raise NotFound(f"unknown operator {operator!r} (catalog {catalog.root}: "
                       f"{', '.join(p.name for p in catalog.providers)})") from None
    contracts = sorted(c.id for c in dept.contracts if c.provider == prov.name and c.valid_on(plan.date))
    if not contracts:
        raise NoValidContract(f"department {dept.name} holds no contract with operator {prov.name} "
                              f"valid on {plan.date.isoformat()}")
    check_cidr_indexes(catalog)
    cidr = tenant_cidr(catalog, dept, prov)
    placements = sorted((p for p in plan.placements if p.department == dept.name and p.provider == prov.name),
                        key=lambda p: (p.request, p.role))
    requests = {r.name: r for r in dept.requests}
    level = max([dept.mlps_level] + [requests[p.request].mlps_level for p in placements if p.request in requests])
    pname = project_name(dept.name)
    prefix = pname  # names of network objects inside the project

    project = ProjectSpec(
        name=pname,
        description=f"{MANAGED_BY}-managed tenant of {dept.name} ({dept.display_name}) on {prov.name}",
        tags=tuple([PROJECT_TAG, f"{DEPARTMENT_TAG_PREFIX}{dept.name}"]
                   + [f"{CONTRACT_TAG_PREFIX}{c}" for c in contracts] + [f"{MLPS_TAG_PREFIX}{level}"]),
    )
    users = tuple(sorted((UserSpec(name=f"{dept.name}.{u.name}", email=u.email,
                                   description=f"{MANAGED_BY}-managed user of {dept.name}") for u in dept.users),
                         key=lambda u: u.name))
    roles = tuple(sorted({RoleAssignmentSpec(f"{dept.name}.{u.name}", u.role) for u in dept.users},
                         key=lambda a: (a.user, a.role)))
    network = NetworkSpec(name=f"{prefix}-net", subnet_name=f"{prefix}-subnet", cidr=str(cidr),
                          gateway_ip=str(cidr.network_address + 1), router_name=f"{prefix}-router",
                          external_network=prov.external_network)

    baseline = SecurityGroupSpec(f"{prefix}-baseline", f"{MANAGED_BY}-managed MLPS {level} baseline",
                                 baseline_rules(level, str(cidr), management_cidr))
    sgs: dict[str, SecurityGroupSpec] = {}
    notes: list[str] = []
    flavors: dict[str, FlavorSpec] = {}
    server_groups: list[ServerGroupSpec] = []
    servers: list[ServerSpec] = []
    volumes: list[VolumeSpec] = []
    fips: list[FloatingIpSpec] = []
    for p in placements:
        req = requests.get(p.request)
        if req is None:
            raise NotFound(f"plan places request {p.request!r} of {dept.name}, which the catalog does not have")
        tpl = catalog.templates.get(req.template)
        if tpl is None:
            raise NotFound(f"request {dept.name}/{req.name}: unknown template {req.template!r}")
        size = tpl.sizes[req.size]
        if tpl.name not in sgs:
            rules, tnotes = template_rules(tpl, level, management_cidr)
            sgs[tpl.name] = SecurityGroupSpec(f"{prefix}-{tpl.name}",
                                              f"{MANAGED_BY}-managed rules of template {tpl.name}", rules)
            notes.extend(tnotes)
        flavor = f"{prefix}.{size.vcpu}c{size.ram_gb}g{size.disk_gb}d"
        flavors[flavor] = FlavorSpec(flavor, size.vcpu, size.ram_gb * 1024, size.disk_gb)
        base = f"{dept.name}-{req.name}" + ("-sb" if p.role == "standby" else "")
        group = None
        if req.ha and sum(n for _, n in p.zones) >= 2:
            group = f"{base}-aa"
            server_groups.append(ServerGroupSpec(group, HA_SERVER_GROUP_POLICY))
        i = 0
        for zone, n in sorted(p.zones):
            for _ in range(n):
                i += 1
                sname = f"{base}-{i:02d}"
                variables = {
                    "department": dept.name, "display_name": dept.display_name, "operator": prov.name,
                    "request": req.name, "role": p.role, "server": sname, "instance": sname, "index": i,
                    "zone": zone, "provider": prov.name,
                    "template": tpl.name, "size": req.size, "vcpu": size.vcpu, "ram_gb": size.ram_gb,
                    "disk_gb": size.disk_gb, "cidr": str(cidr), "gateway_ip": network.gateway_ip,
                    "management_cidr": management_cidr, "mlps_level": level, "project": pname,
                    "contract": p.contract,
                }
                servers.append(ServerSpec(
                    name=sname, request=req.name, role=p.role, template=tpl.name, flavor=flavor, image=tpl.image,
                    availability_zone=zone, server_group=group,
                    security_groups=(baseline.name, sgs[tpl.name].name), port_name=f"{sname}-port",
                    user_data=render_user_data(tpl, variables), vcpu=size.vcpu, ram_gb=size.ram_gb,
                    disk_gb=size.disk_gb))
                for v in tpl.volumes:
                    volumes.append(VolumeSpec(f"{sname}-{v.name}", v.size_gb, sname))
                for k in range(tpl.floating_ips):
                    fips.append(FloatingIpSpec(f"{sname}-fip{k + 1}", sname, prov.external_network))

    usable = cidr.num_addresses - 2 - 1 - 2     # network, broadcast, gateway, DHCP + router interface
    if len(servers) > usable:
        raise CidrConflict(f"tenant {dept.name} on {prov.name}: {len(servers)} servers do not fit the /"
                           f"{OPERATOR_PREFIXLEN} {cidr} ({usable} addresses)")
    groups = (baseline,) + tuple(sgs[k] for k in sorted(sgs))
    quotas = _quotas(servers, server_groups, volumes, fips, groups)
    return TenantSpec(
        department=dept.name, operator=prov.name, cloud=prov.cloud, date=plan.date, mlps_level=level,
        contracts=tuple(contracts), project=project, users=users, role_assignments=roles, quotas=quotas,
        flavors=tuple(flavors[k] for k in sorted(flavors)), network=network, security_groups=groups,
        server_groups=tuple(sorted(server_groups, key=lambda g: g.name)),
        servers=tuple(sorted(servers, key=lambda s: s.name)), volumes=tuple(sorted(volumes, key=lambda v: v.name)),
        floating_ips=tuple(sorted(fips, key=lambda f: f.name)), management_cidr=management_cidr,
        notes=tuple(notes))


def _quotas(servers, server_groups, volumes, fips, groups) -> QuotaSpec:
    members = max([sum(1 for s in servers if s.server_group == g.name) for g in server_groups] or [0])
    compute = {
        "instances": headroom(len(servers)),
        "cores": headroom(sum(s.vcpu for s in servers)),
        "ram": headroom(sum(s.ram_gb for s in servers) * 1024),
        "server_groups": headroom(len(server_groups)),
        "server_group_members": headroom(members),
    }
    network = {
        "network": headroom(1), "subnet": headroom(1), "router": headroom(1),
        "port": headroom(len(servers) + 2),                      # + router interface + DHCP
        "floatingip": headroom(len(fips)),
        "security_group": headroom(len(groups) + 1),             # + the project's default group
        "security_group_rule": headroom(sum(len(g.rules) + 2 for g in groups) + 4),
    }
    volume = {"volumes": headroom(len(volumes)), "gigabytes": headroom(sum(v.size_gb for v in volumes))}
    return QuotaSpec(tuple(sorted(compute.items())), tuple(sorted(network.items())), tuple(sorted(volume.items())))


def tenant_specs(catalog: Catalog, plan: Plan, *, management_cidr: str = DEFAULT_MANAGEMENT_CIDR) -> tuple[TenantSpec, ...]:
    """Every (department, operator) the plan places something on, in name order."""
    pairs = sorted({(p.department, p.provider) for p in plan.placements})
    return tuple(tenant_spec(catalog, plan, d, o, management_cidr=management_cidr) for d, o in pairs)


def operators_of(catalog: Catalog, plan: Plan, department: str) -> tuple[str, ...]:
    """Operators the department has placements on in the plan (for `stack render`)."""
    return tuple(sorted({p.provider for p in plan.placements if p.department == department}))


def world_open_admin_rules(spec: TenantSpec) -> list[tuple[str, RuleSpec]]:
    """(group, rule) pairs that open an admin port to 0.0.0.0/0 (must be empty at MLPS >= 2)."""
    return [(g.name, r) for g in spec.security_groups for r in g.rules
            if r.direction == "ingress" and r.world_open and r.admin_ports_reached()]


def spec_to_dict(spec: TenantSpec) -> dict:
    """JSON-ready form (dates as ISO strings)."""
    import dataclasses

    d = dataclasses.asdict(spec)
    d["date"] = spec.date.isoformat()
    d["quotas"] = spec.quotas.as_dict()
    return d


# --------------------------------------------------------------------------- resource kinds
class Item(NamedTuple):
    """One object of a tenant in canonical form: the common language of the Pulumi mock graph,
    the SDK engine and drift read-back. ``key`` holds the inputs compared for drift, as sorted
    ``(field, value)`` pairs of plain str/int/tuples."""

    kind: str
    name: str
    key: tuple[tuple[str, Any], ...] = ()

    @property
    def ref(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def field(self, name: str, default: Any = None) -> Any:
        return dict(self.key).get(name, default)


def item(kind: str, name: str, **key: Any) -> Item:
    """An Item with its key inputs in canonical (sorted) order."""
    return Item(kind, name, tuple(sorted(key.items())))


@dataclass(frozen=True)
class Kind:
    """One tenant resource kind, declared once. Its position in ``KINDS`` is the create order
    (reversed: the destroy order). ``pulumi_types``: the pulumi-openstack resource types the
    component declares for it (the first is what ``pulumi import`` adopts, when ``importable``);
    ``items``: how a TenantSpec becomes this kind's inventory items. The SDK engine's
    read/create/update/delete of each kind is in ``yunshang/openstack/tenant/`` and the Pulumi
    component's declaration in ``stacks/components/tenant.py``, both keyed by ``name``
    (tests/unit/test_tenant_kinds.py checks that every kind has both, and nothing else)."""

    name: str
    pulumi_types: tuple[str, ...]
    items: Callable[["TenantSpec"], Iterable[Item]]
    importable: bool = True

    @property
    def pulumi_type(self) -> str:
        return self.pulumi_types[0]

    def import_id(self, ident: str) -> str:
        """The id ``pulumi import`` takes for an object of this kind with OpenStack id ``ident``."""
        return ident


def _project_items(s: "TenantSpec") -> Iterable[Item]:
    yield item("project", s.project.name, description=s.project.description, tags=tuple(sorted(s.project.tags)))


def _users_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("user", u.name, email=u.email) for u in s.users)


def _role_assignments_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("role_assignment", f"{a.user}/{a.role}") for a in s.role_assignments)


def _quotas_items(s: "TenantSpec") -> Iterable[Item]:
    return (Item("quota", service, tuple(sorted(fields))) for service, fields in
            (("compute", s.quotas.compute), ("network", s.quotas.network), ("volume", s.quotas.volume)))


def _flavors_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("flavor", f.name, disk_gb=f.disk_gb, ram_mb=f.ram_mb, vcpus=f.vcpus) for f in s.flavors)


def _networks_items(s: "TenantSpec") -> Iterable[Item]:
    yield item("network", s.network.name)


def _subnets_items(s: "TenantSpec") -> Iterable[Item]:
    n = s.network
    yield item("subnet", n.subnet_name, cidr=n.cidr, gateway_ip=n.gateway_ip, network=n.name)


def _routers_items(s: "TenantSpec") -> Iterable[Item]:
    yield item("router", s.network.router_name, external_network=s.network.external_network)


def _router_interfaces_items(s: "TenantSpec") -> Iterable[Item]:
    yield item("router_interface", f"{s.network.router_name}/{s.network.subnet_name}")


def _security_groups_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("security_group", g.name) for g in s.security_groups)


def _security_group_rules_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("security_group_rule", rule_label(g.name, r)) for g in s.security_groups for r in g.rules)


def _server_groups_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("server_group", g.name, policy=g.policy) for g in s.server_groups)


def _ports_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("port", v.port_name, network=s.network.name, security_groups=tuple(sorted(v.security_groups)))
            for v in s.servers)


def _servers_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("server", v.name, availability_zone=v.availability_zone, flavor=v.flavor, image=v.image,
                 port=v.port_name, server_group=v.server_group or "") for v in s.servers)


def _volumes_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("volume", v.name, server=v.server, size_gb=v.size_gb) for v in s.volumes)


def _floating_ips_items(s: "TenantSpec") -> Iterable[Item]:
    return (item("floating_ip", f.name, pool=f.pool, server=f.server) for f in s.floating_ips)


_OS = "openstack:"
KINDS: tuple[Kind, ...] = (
    Kind("project", (_OS + "identity/project:Project",), _project_items),
    Kind("user", (_OS + "identity/user:User",), _users_items),
    Kind("role_assignment", (_OS + "identity/roleAssignment:RoleAssignment",), _role_assignments_items, importable=False),
    Kind("quota", (_OS + "compute/quotaSetV2:QuotaSetV2", _OS + "networking/quotaV2:QuotaV2",
                   _OS + "blockstorage/quoteSetV3:QuoteSetV3"), _quotas_items, importable=False),
    Kind("flavor", (_OS + "compute/flavor:Flavor", _OS + "compute/flavorAccess:FlavorAccess"), _flavors_items),
    Kind("network", (_OS + "networking/network:Network",), _networks_items),
    Kind("subnet", (_OS + "networking/subnet:Subnet",), _subnets_items),
    Kind("router", (_OS + "networking/router:Router",), _routers_items),
    Kind("router_interface", (_OS + "networking/routerInterface:RouterInterface",), _router_interfaces_items),
    Kind("security_group", (_OS + "networking/secGroup:SecGroup",), _security_groups_items),
    Kind("security_group_rule", (_OS + "networking/secGroupRule:SecGroupRule",), _security_group_rules_items),
    Kind("server_group", (_OS + "compute/serverGroup:ServerGroup",), _server_groups_items),
    Kind("port", (_OS + "networking/port:Port",), _ports_items),
    Kind("server", (_OS + "compute/instance:Instance",), _servers_items),
    Kind("volume", (_OS + "blockstorage/volume:Volume", _OS + "compute/volumeAttach:VolumeAttach"), _volumes_items),
    Kind("floating_ip", (_OS + "networking/floatingIp:FloatingIp",), _floating_ips_items),
)
KIND: dict[str, Kind] = {k.name: k for k in KINDS}
KIND_ORDER: tuple[str, ...] = tuple(k.name for k in KINDS)
DESTROY_ORDER: tuple[str, ...] = KIND_ORDER[::-1]
PULUMI_TYPES: dict[str, str] = {k.name: k.pulumi_type for k in KINDS if k.importable}


def kind_rank(kind: str) -> int:
    """Create order of ``kind`` (unknown kinds last)."""
    return KIND_ORDER.index(kind) if kind in KIND else len(KIND_ORDER)


def spec_inventory(spec: TenantSpec) -> frozenset[Item]:
    """What the tenant consists of, kind by kind (see ``KINDS``)."""
    return frozenset(i for k in KINDS for i in k.items(spec))


# --------------------------------------------------------------------------- drift
@dataclass(frozen=True)
class Drift:
    """Spec vs what was read back: by (kind, name)."""

    missing: tuple[Item, ...]                       # in the spec, not in the cloud
    extra: tuple[Item, ...]                         # in the cloud (in the tenant's scope), not in the spec
    different: tuple[tuple[Item, Item], ...]        # (wanted, found) with the same kind and name

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def as_dict(self) -> dict:
        def one(i):
            return {"kind": i[0], "name": i[1], "key": {k: list(v) if isinstance(v, tuple) else v for k, v in i[2]}}
        return {"clean": self.clean, "missing": [one(i) for i in self.missing], "extra": [one(i) for i in self.extra],
                "different": [{"wanted": one(w), "found": one(f)} for w, f in self.different]}


def _order(i: Item) -> tuple:
    return (kind_rank(i[0]), i[1])


def diff_inventories(want: Iterable[Item], have: Iterable[Item]) -> Drift:
    """Pure drift: compare by (kind, name); the key inputs decide 'different'."""
    w = {(i[0], i[1]): Item(*i) for i in want}
    h = {(i[0], i[1]): Item(*i) for i in have}
    missing = sorted((w[k] for k in w.keys() - h.keys()), key=_order)
    extra = sorted((h[k] for k in h.keys() - w.keys()), key=_order)
    different = sorted(((w[k], h[k]) for k in w.keys() & h.keys() if w[k] != h[k]), key=lambda p: _order(p[0]))
    return Drift(tuple(missing), tuple(extra), tuple(different))
