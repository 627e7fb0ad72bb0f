"""Headroom against the catalog's overcommit policy, and what a tenant's live usage costs.

Pure functions over the catalog model and the live snapshot records
(``yunshang.capacity``); the exporters and the CLI only print their results.

Units: Placement's resource classes keep Placement's units (VCPU count,
MEMORY_MB mebibytes, DISK_GB gibibytes); ``*_base_units`` converts to what
Prometheus wants (count, bytes, bytes).
"""
from __future__ import annotations

from typing import Iterable

from yunshang.capacity import QuotaUsage, ZoneCapacity
from yunshang.model import Prices, Zone

# Placement resource class -> (catalog resource, Placement units per catalog unit, bytes per Placement unit)
_CLASSES = {
    "VCPU": ("vcpu", 1, 1),
    "MEMORY_MB": ("ram_gb", 1024, 1024 ** 2),
    "DISK_GB": ("disk_gb", 1, 1024 ** 3),
}


def to_base_units(resource_class: str, amount: float) -> float:
    """Placement amount -> base unit (vCPU count, bytes, bytes)."""
    return amount * _CLASSES[resource_class][2]


def catalog_capacity(zone: Zone, resource_class: str) -> float:
    """The catalog's schedulable capacity of a zone (physical x overcommit), in Placement units."""
    resource, per_unit, _ = _CLASSES[resource_class]
    return zone.capacity(resource) * per_unit


def headroom(zone: Zone, resource_class: str, used: float) -> float:
    """What may still be placed in the zone under the catalog's policy (Placement units).

    Negative when live usage already exceeds what the catalog promises.
    """
    return catalog_capacity(zone, resource_class) - used


def headroom_ratio(zone: Zone, resource_class: str, used: float) -> float:
    """headroom / catalog capacity (0..1; negative when overcommitted past policy; 0 when no capacity)."""
    cap = catalog_capacity(zone, resource_class)
    return 0.0 if cap <= 0 else (cap - used) / cap


def zone_used(zones: Iterable[ZoneCapacity], zone: str, resource_class: str) -> float:
    return sum(z.used for z in zones if z.zone == zone and z.resource_class == resource_class)


def quota_usage_ratio(limit: int, in_use: int) -> float:
    """in_use / limit; 0.0 for unlimited (-1) quotas; 1.0 when a zero quota is used at all."""
    if limit < 0:
        return 0.0
    if limit == 0:
        return 1.0 if in_use > 0 else 0.0
    return in_use / limit


# quota resource names (nova / neutron / cinder) that are billed, -> Prices field and divisor to catalog unit
_BILLED = {
    ("compute", "cores"): ("vcpu", 1),
    ("compute", "ram"): ("ram_gb", 1024),          # nova counts MiB
    ("volume", "gigabytes"): ("disk_gb", 1),
    ("network", "floatingip"): ("floating_ip", 1),
    ("network", "floating_ips"): ("floating_ip", 1),
}


def tenant_resources(quotas: Iterable[QuotaUsage]) -> dict[str, float]:
    """The billed resources a department's project is using now, in catalog units."""
    acc = {"vcpu": 0.0, "ram_gb": 0.0, "disk_gb": 0.0, "floating_ip": 0.0}
    for q in quotas:
        key = _BILLED.get((q.service, q.resource))
        if key:
            acc[key[0]] += q.in_use / key[1]
    return acc


def tenant_monthly_cost_cny(prices: Prices, quotas: Iterable[QuotaUsage]) -> float:
    """Monthly price of what the tenant uses now (cores, RAM, volume GB, floating IPs), via ``Prices.monthly_cny``."""
    r = tenant_resources(quotas)
    return prices.monthly_cny(r["vcpu"], r["ram_gb"], r["disk_gb"], r["floating_ip"])


def ceiling_used_ratio(cost_cny: float, ceiling_cny_per_month: float) -> float:
    """cost / contract ceiling (0 when the contract has no ceiling)."""
    return 0.0 if ceiling_cny_per_month <= 0 else cost_cny / ceiling_cny_per_month
