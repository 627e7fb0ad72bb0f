"""Live capacity and usage snapshots (pure data) and the math over them.

``yunshang.openstack`` fills these from each operator's Placement and quota
APIs; exporters, ``capacity show`` and ``plan --live`` only read them.
Placement's own units are kept in the records (VCPU, MEMORY_MB, DISK_GB);
``to_usage`` converts to the catalog's units (vcpu, ram_gb, disk_gb).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from yunshang.model import Usage

# Placement resource class -> (catalog resource, divisor to catalog unit)
RESOURCE_CLASSES = {"VCPU": ("vcpu", 1), "MEMORY_MB": ("ram_gb", 1024), "DISK_GB": ("disk_gb", 1)}

# Tags yunshang puts on every Keystone project it manages.
PROJECT_TAG = "yunshang"
DEPARTMENT_TAG_PREFIX = "department:"
CONTRACT_TAG_PREFIX = "contract:"
MLPS_TAG_PREFIX = "mlps:"


def project_name(department: str) -> str:
    """The Keystone project name of a department's tenant on any operator."""
    return f"dept-{department}"


@dataclass(frozen=True)
class ZoneCapacity:
    """One resource class summed over the compute nodes of one zone (availability zone)."""

    provider: str
    zone: str
    resource_class: str          # VCPU | MEMORY_MB | DISK_GB
    total: int
    reserved: int
    allocation_ratio: float
    used: int

    @property
    def capacity(self) -> float:
        """What the scheduler may hand out: (total - reserved) x allocation ratio."""
        return (self.total - self.reserved) * self.allocation_ratio

    @property
    def free(self) -> float:
        return self.capacity - self.used


@dataclass(frozen=True)
class QuotaUsage:
    """Quota limit and usage of one resource in one department's project."""

    provider: str
    department: str
    project_id: str
    service: str                 # compute | network | volume
    resource: str                # cores, ram, instances, networks, ports, gigabytes, ...
    limit: int                   # -1 = unlimited
    in_use: int


# The families of facts one refresh reads; each succeeds or fails on its own, so one failing API
# leaves the others' numbers current (``FamilyRead``).
FAMILIES = ("capacity", "quota_limits", "compute_usage", "network_usage", "volume_usage")


@dataclass(frozen=True)
class FamilyRead:
    """How one family of an operator's facts fared in a refresh. ``ok`` False: ``error`` says why
    (no secrets; the API and the HTTP status or exception class only)."""

    family: str                  # one of FAMILIES
    ok: bool
    error: str = ""
    read_at: dt.datetime | None = None   # when this family's records were read (None: never yet)


@dataclass(frozen=True)
class ApiCall:
    """One HTTP call a refresh made: which service, how long, whether it failed."""

    service: str                 # compute | network | volume | placement | identity
    seconds: float
    ok: bool


@dataclass(frozen=True)
class OperatorSnapshot:
    """Everything read from one operator in one refresh. ``ok`` False: ``error`` says why.

    ``families`` says, per family, whether this refresh read it; a snapshot with ``ok`` True may
    still have failed families, whose records are then the last good ones (``read_at`` says when).
    An empty ``families`` means every family was read in this refresh."""

    provider: str
    taken_at: dt.datetime
    duration_seconds: float
    ok: bool
    error: str = ""
    zones: tuple[ZoneCapacity, ...] = ()
    instances: tuple[tuple[str, int], ...] = ()      # (zone, servers in it)
    quotas: tuple[QuotaUsage, ...] = ()
    families: tuple[FamilyRead, ...] = ()
    api_calls: tuple[ApiCall, ...] = ()

    def family_ok(self, family: str) -> bool:
        """Whether this refresh read ``family`` (all families, when none is listed)."""
        if not self.ok:
            return False
        return all(f.ok for f in self.families if f.family == family)


def to_usage(zones: tuple[ZoneCapacity, ...] | list[ZoneCapacity]) -> tuple[Usage, ...]:
    """Sum live usage per (provider, zone) in catalog units, for ``plan --live``."""
    acc: dict[tuple[str, str], dict[str, float]] = {}
    for z in zones:
        if z.resource_class not in RESOURCE_CLASSES:
            continue
        res, div = RESOURCE_CLASSES[z.resource_class]
        acc.setdefault((z.provider, z.zone), {"vcpu": 0.0, "ram_gb": 0.0, "disk_gb": 0.0})[res] += z.used / div
    return tuple(Usage(provider=p, zone=zn, **v) for (p, zn), v in sorted(acc.items()))
