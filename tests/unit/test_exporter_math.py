"""yunshang.headroom: catalog headroom and tenant cost, table-driven."""
from __future__ import annotations

import pytest

from yunshang import headroom as hr
from yunshang.capacity import QuotaUsage, ZoneCapacity
from yunshang.model import Overcommit, Prices, Zone

ZONE = Zone("az1", vcpu=100, ram_gb=400, disk_gb=10000, overcommit=Overcommit(vcpu=4.0, ram_gb=1.5, disk_gb=1.0))


@pytest.mark.parametrize("rc, used, capacity, room, ratio", [
    ("VCPU", 100, 400.0, 300.0, 0.75),
    ("MEMORY_MB", 0, 600 * 1024.0, 600 * 1024.0, 1.0),
    ("DISK_GB", 12000, 10000.0, -2000.0, -0.2),      # past policy: negative, not clamped
])
def test_headroom(rc, used, capacity, room, ratio):
    assert hr.catalog_capacity(ZONE, rc) == capacity
    assert hr.headroom(ZONE, rc, used) == room
    assert hr.headroom_ratio(ZONE, rc, used) == pytest.approx(ratio)


def test_headroom_ratio_zero_capacity():
    assert hr.headroom_ratio(Zone("z", 0, 0, 0), "VCPU", 5) == 0.0


@pytest.mark.parametrize("rc, amount, base", [("VCPU", 3, 3), ("MEMORY_MB", 2, 2 * 1024 ** 2), ("DISK_GB", 1, 1024 ** 3)])
def test_base_units(rc, amount, base):
    assert hr.to_base_units(rc, amount) == base


def test_zone_used_sums_matching_records():
    zones = [ZoneCapacity("t", "az1", "VCPU", 10, 0, 1.0, 3), ZoneCapacity("t", "az1", "VCPU", 10, 0, 1.0, 4),
             ZoneCapacity("t", "az2", "VCPU", 10, 0, 1.0, 5), ZoneCapacity("t", "az1", "DISK_GB", 10, 0, 1.0, 9)]
    assert hr.zone_used(zones, "az1", "VCPU") == 7


@pytest.mark.parametrize("limit, in_use, ratio", [(-1, 50, 0.0), (0, 0, 0.0), (0, 1, 1.0), (20, 5, 0.25), (10, 12, 1.2)])
def test_quota_usage_ratio(limit, in_use, ratio):
    assert hr.quota_usage_ratio(limit, in_use) == ratio


def q(service, resource, in_use, limit=100):
    return QuotaUsage("telecom", "health", "p1", service, resource, limit, in_use)


PRICES = Prices(vcpu=100.0, ram_gb=20.0, disk_gb=0.5, floating_ip=30.0)


@pytest.mark.parametrize("quotas, cost", [
    ([], 0.0),
    ([q("compute", "cores", 4), q("compute", "ram", 8192)], 4 * 100 + 8 * 20),
    ([q("volume", "gigabytes", 100), q("network", "floatingip", 2)], 50 + 60),
    ([q("compute", "instances", 9), q("network", "ports", 40)], 0.0),   # not billed
])
def test_tenant_monthly_cost(quotas, cost):
    assert hr.tenant_monthly_cost_cny(PRICES, quotas) == pytest.approx(cost)


@pytest.mark.parametrize("cost, ceiling, ratio", [(500, 1000, 0.5), (0, 0, 0.0), (1200, 1000, 1.2)])
def test_ceiling_used_ratio(cost, ceiling, ratio):
    assert hr.ceiling_used_ratio(cost, ceiling) == ratio
