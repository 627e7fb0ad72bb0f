"""Pure data: frozen dataclasses for the catalog, requests and plans.

Units are in the names: ``_gb`` is GiB-sized gigabytes as the catalog counts
them, ``_cny`` is yuan, ``_ratio`` is 0..1. Collections are tuples so every
object is hashable and immutable.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from yunshang.errors import UnknownName

RESOURCES = ("vcpu", "ram_gb", "disk_gb")


# --------------------------------------------------------------------------- providers
@dataclass(frozen=True)
class Overcommit:
    vcpu: float = 1.0
    ram_gb: float = 1.0
    disk_gb: float = 1.0


@dataclass(frozen=True)
class Zone:
    name: str
    vcpu: int
    ram_gb: int
    disk_gb: int
    overcommit: Overcommit = Overcommit()
    site: str = ""               # the site (data center) it is in; "" = the root site

    def capacity(self, resource: str) -> float:
        """Schedulable amount of ``resource``: physical x overcommit."""
        return getattr(self, resource) * getattr(self.overcommit, resource)


@dataclass(frozen=True)
class ProviderSla:
    availability: float          # target ratio, e.g. 0.9995
    rto_minutes: int
    rpo_minutes: int


@dataclass(frozen=True)
class Prices:
    """CNY per month, per unit."""

    vcpu: float
    ram_gb: float
    disk_gb: float
    floating_ip: float

    def monthly_cny(self, vcpu: float, ram_gb: float, disk_gb: float, floating_ips: float = 0) -> float:
        """Monthly price of the given resources: the one pricing formula everything uses."""
        return (vcpu * self.vcpu + ram_gb * self.ram_gb + disk_gb * self.disk_gb
                + floating_ips * self.floating_ip)


@dataclass(frozen=True)
class MaintenanceWindow:
    """A declared window (UTC) excluded from SLA availability."""

    start: dt.datetime
    end: dt.datetime
    reason: str = ""


@dataclass(frozen=True)
class Provider:
    name: str
    cloud: str                   # clouds.yaml entry of this operator
    dedicated: bool
    mlps_level: int
    sla: ProviderSla
    prices: Prices
    zones: tuple[Zone, ...]
    external_network: str = "public"
    volume_encryption: bool = False
    maintenance: tuple[MaintenanceWindow, ...] = ()

    def zone(self, name: str) -> Zone:
        for z in self.zones:
            if z.name == name:
                return z
        raise UnknownName(f"zone of {self.name}", name, [z.name for z in self.zones])


# --------------------------------------------------------------------------- departments
@dataclass(frozen=True)
class SlaCredit:
    """If monthly availability falls below ``below``, ``credit_ratio`` of the bill is credited."""

    below: float
    credit_ratio: float


@dataclass(frozen=True)
class Contract:
    id: str
    provider: str
    role: str                    # "primary" | "backup"
    start: dt.date
    end: dt.date
    ceiling_cny_per_month: float
    sla_credits: tuple[SlaCredit, ...] = ()

    def valid_on(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Request:
    name: str
    template: str
    size: str
    count: int
    mlps_level: int
    ha: bool = False
    dr: bool = False
    secret: bool = False


@dataclass(frozen=True)
class RequestDocument:
    """A department's templated capacity request (``request submit FILE``, ``POST /api/v1/requests``).

    ONE schema for it: ``yunshang.catalog.request_document`` (the entries are the catalog's
    request entries; ``mlps_level`` defaults to the department's level).
    """

    department: str
    title: str
    requests: tuple[Request, ...]
    probes: tuple["Probe", ...] = ()
    contact: str = ""


# The roles a person can hold at the center (people.yaml). Department roles act only for
# their own department; center roles act for every department.
DEPARTMENT_ROLES = ("requester", "department-head")
CENTER_ROLES = ("reviewer", "approver", "auditor", "engineer")
PERSON_ROLES = DEPARTMENT_ROLES + CENTER_ROLES


@dataclass(frozen=True)
class Person:
    """Someone who acts at the center: a Keystone user of the center's identity service."""

    name: str
    display_name: str
    roles: tuple[str, ...]
    department: str = ""         # set exactly when a role is a department role
    email: str = ""


@dataclass(frozen=True)
class ApprovalPolicy:
    """The approval chain (people.yaml ``approval:``): who must act before a request is approved."""

    department_head_endorses: bool = True
    two_approvers_above_cny_per_month: float = 100000.0


@dataclass(frozen=True)
class User:
    name: str
    role: str = "member"         # keystone role in the department's projects
    email: str = ""


@dataclass(frozen=True)
class Probe:
    """A published service the SLA exporter probes (http(s) URL or host:port)."""

    name: str
    kind: str                    # "http" | "tcp"
    target: str
    contract: str = ""           # contract id it counts against ("" = the primary)


@dataclass(frozen=True)
class Department:
    name: str
    display_name: str
    mlps_level: int
    contracts: tuple[Contract, ...]
    requests: tuple[Request, ...]
    users: tuple[User, ...] = ()
    probes: tuple[Probe, ...] = ()
    cidr_index: int = 0          # stable index used to carve tenant CIDRs (see tenant spec)
    site: str = ""               # the site it belongs to; "" = the root site

    def contract(self, contract_id: str) -> Contract:
        for c in self.contracts:
            if c.id == contract_id:
                return c
        raise UnknownName(f"contract of {self.name}", contract_id, [c.id for c in self.contracts])


# --------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class Size:
    vcpu: int
    ram_gb: int
    disk_gb: int


@dataclass(frozen=True)
class Rule:
    """A security-group rule. ``port_min``/``port_max`` None means any port."""

    protocol: str                # tcp | udp | icmp | any
    port_min: int | None
    port_max: int | None
    remote_cidr: str
    description: str = ""


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size_gb: int


@dataclass(frozen=True)
class Template:
    name: str
    file: str                    # source path, for error messages
    sizes: Mapping[str, Size]
    floating_ips: int = 0
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    image: str = "cirros"
    volumes: tuple[VolumeSpec, ...] = ()
    user_data: str = ""          # Jinja2 source, rendered per server
    source: str = ""             # raw template text (Jinja2 errors point into it)

    def __hash__(self) -> int:  # Mapping is not hashable; name+file identify a template
        return hash((self.name, self.file))


def frozen_mapping(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


# --------------------------------------------------------------------------- sites
TIERS = ("province", "city", "county", "township")   # top to bottom


@dataclass(frozen=True)
class Site:
    """A data center of the hierarchy (sites.yaml); ``parent`` "" for the root."""

    name: str
    tier: str
    display_name: str = ""
    parent: str = ""
    budget_cny_per_month: float | None = None


IMPLICIT_ROOT = Site(name="root", tier="city", display_name="root")


# --------------------------------------------------------------------------- catalog
# Digests of a migration's integrity evidence (manifests, records): SHA-256, or SM3 (GB/T 32905,
# what many government audits ask for). Chosen per catalog (migration.yaml: hash_algorithm) or
# per run (`yunshang migrate run --hash-algorithm`, which wins).
MIGRATION_HASH_ALGORITHMS = ("sha256", "sm3")
DEFAULT_MIGRATION_HASH = "sha256"


@dataclass(frozen=True)
class Catalog:
    root: str
    providers: tuple[Provider, ...]
    departments: tuple[Department, ...]
    templates: Mapping[str, Template] = field(default_factory=lambda: frozen_mapping({}))
    people: tuple[Person, ...] = ()
    approval: ApprovalPolicy = ApprovalPolicy()
    sites: tuple[Site, ...] = ()     # () = one implicit root site (no sites.yaml)
    migration_hash_algorithm: str = DEFAULT_MIGRATION_HASH     # migration.yaml: hash_algorithm

    def __hash__(self) -> int:
        return hash((self.root, self.providers, self.departments, self.sites))

    def provider(self, name: str) -> Provider:
        for p in self.providers:
            if p.name == name:
                return p
        raise UnknownName("operator", name, [p.name for p in self.providers])

    def department(self, name: str) -> Department:
        for d in self.departments:
            if d.name == name:
                return d
        raise UnknownName("department", name, [d.name for d in self.departments])

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise UnknownName("person", name, [p.name for p in self.people])


# --------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Usage:
    """Resources already used in one zone of one provider (from live Placement)."""

    provider: str
    zone: str
    vcpu: float = 0.0
    ram_gb: float = 0.0
    disk_gb: float = 0.0


@dataclass(frozen=True)
class Placement:
    department: str
    request: str
    role: str                    # "primary" | "standby"
    provider: str
    contract: str
    zones: tuple[tuple[str, int], ...]   # (zone, instances), sorted by zone
    vcpu: int
    ram_gb: int
    disk_gb: int
    floating_ips: int
    monthly_cost_cny: float
    sites: tuple[str, ...] = ()          # the sites of its zones, sorted (usually one)

    @property
    def site(self) -> str:
        return ",".join(self.sites)


@dataclass(frozen=True)
class Unplaced:
    department: str
    request: str
    role: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ZoneUtilization:
    provider: str
    zone: str
    vcpu_ratio: float
    ram_gb_ratio: float
    disk_gb_ratio: float


@dataclass(frozen=True)
class Plan:
    date: dt.date
    placements: tuple[Placement, ...]
    unplaced: tuple[Unplaced, ...]
    utilization: tuple[ZoneUtilization, ...]
    total_monthly_cost_cny: float
