"""exporters.collectors over hand-built snapshots: a fresh CollectorRegistry per test, values read
with get_sample_value (the client_python way). No network: the data source is the in-memory state."""
from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.collectors import CapacityCollector, QuotaCollector, SelfCollector, SlaCollector, SpendCollector
from exporters.probes import ProbeTarget, api_root, department_targets, service_targets
from exporters.state import ExporterState, ProbeResult
from exporters.store import ProbeStore
from yunshang.capacity import OperatorSnapshot, QuotaUsage, ZoneCapacity
from yunshang.errors import YunshangError
from yunshang.model import (Catalog, Contract, Department, MaintenanceWindow, Overcommit, Prices, Probe, Provider,
                            ProviderSla, SlaCredit, Zone)

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
GiB = 1024 ** 3


def provider(name, maintenance=()):
    return Provider(name=name, cloud=name, dedicated=False, mlps_level=3,
                    sla=ProviderSla(availability=0.999, rto_minutes=30, rpo_minutes=15),
                    prices=Prices(vcpu=30, ram_gb=10, disk_gb=0.5, floating_ip=25),
                    zones=(Zone("az1", vcpu=100, ram_gb=400, disk_gb=1000, overcommit=Overcommit(vcpu=4.0)),),
                    maintenance=maintenance)


CATALOG = Catalog(
    root="mem",
    providers=(provider("telecom", (MaintenanceWindow(dt.datetime(2026, 11, 26, 11), dt.datetime(2026, 11, 26, 13)),)),
               provider("unicom")),
    departments=(
        Department("health", "卫健委", 3, contracts=(
            Contract("H-TEL", "telecom", "primary", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 1000.0,
                     sla_credits=(SlaCredit(0.999, 0.1), SlaCredit(0.99, 0.3))),
            Contract("H-UNI", "unicom", "backup", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 500.0),
            Contract("H-OLD", "telecom", "primary", dt.date(2025, 1, 1), dt.date(2025, 12, 31), 9.0)),
            requests=(), probes=(Probe("portal", "tcp", "127.0.0.1:1"), Probe("dr", "http", "http://127.0.0.1:1/", "H-UNI"))),
    ),
)


def snap(op, ok=True):
    zones = (ZoneCapacity(op, "az1", "VCPU", 64, 4, 16.0, 10), ZoneCapacity(op, "az1", "MEMORY_MB", 65536, 512, 1.5, 2048),
             ZoneCapacity(op, "az1", "DISK_GB", 1000, 0, 1.0, 30), ZoneCapacity(op, "nova", "VCPU", 8, 0, 1.0, 1))
    quotas = (QuotaUsage(op, "health", "p1", "compute", "cores", 20, 4),
              QuotaUsage(op, "health", "p1", "compute", "ram", 8192, 4096),
              QuotaUsage(op, "health", "p1", "volume", "gigabytes", -1, 100),
              QuotaUsage(op, "health", "p1", "network", "floatingip", 2, 1))
    if not ok:
        return OperatorSnapshot(op, NOW, 0.1, ok=False, error="ConnectException: http://secret@127.0.0.1 refused")
    return OperatorSnapshot(op, NOW, 0.25, ok=True, zones=zones, instances=(("az1", 3), ("nova", 1)), quotas=quotas)


class SubsetRegistry(CollectorRegistry):
    """get_sample_value by a subset of the labels: the site and tier labels (issue 13) ride along on
    zone, department and contract series; the tests below name them only where they test them."""

    def get_sample_value(self, name, labels=None):
        labels = labels or {}
        for metric in self.collect():
            for s in metric.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None


def registry(*collectors):
    r = SubsetRegistry(auto_describe=False)
    for c in collectors:
        r.register(c)
    return r


def test_capacity_values_and_headroom():
    st = ExporterState(["telecom", "unicom"])
    st.update(snap("telecom"))
    r = registry(CapacityCollector(st, CATALOG))
    def v(name, **labels):
        return r.get_sample_value(name, {"operator": "telecom", "zone": "az1", **labels})

    assert v("yunshang_zone_vcpus") == 64
    assert v("yunshang_zone_vcpus_reserved") == 4
    assert v("yunshang_zone_vcpus_allocated") == 10
    assert v("yunshang_zone_vcpus_free") == (64 - 4) * 16.0 - 10
    assert v("yunshang_zone_vcpu_allocation_ratio") == 16.0
    assert v("yunshang_zone_vcpus_headroom") == 100 * 4.0 - 10            # catalog policy, not Placement's
    assert v("yunshang_zone_memory_bytes") == 65536 * 1024 ** 2
    assert v("yunshang_zone_memory_free_bytes") == ((65536 - 512) * 1.5 - 2048) * 1024 ** 2
    assert v("yunshang_zone_memory_headroom_bytes") == (400 * 1024 - 2048) * 1024 ** 2
    assert v("yunshang_zone_disk_allocated_bytes") == 30 * GiB
    assert v("yunshang_zone_headroom_ratio", resource="disk") == pytest.approx(0.97)
    assert v("yunshang_zone_instances") == 3
    # a Placement zone the catalog does not know: capacity yes, headroom no
    assert r.get_sample_value("yunshang_zone_vcpus", {"operator": "telecom", "zone": "nova"}) == 8
    assert r.get_sample_value("yunshang_zone_vcpus_headroom", {"operator": "telecom", "zone": "nova"}) is None
    # unicom never refreshed: no capacity series
    assert r.get_sample_value("yunshang_zone_vcpus", {"operator": "unicom", "zone": "az1"}) is None


def test_down_operator_drops_values_and_counts_error_without_leaking_text():
    st = ExporterState(["telecom", "unicom"])
    st.update(snap("telecom"))
    st.update(snap("unicom"))
    st.update(snap("unicom", ok=False))
    r = registry(SelfCollector(st), CapacityCollector(st, CATALOG))
    assert r.get_sample_value("yunshang_operator_up", {"operator": "telecom"}) == 1
    assert r.get_sample_value("yunshang_operator_up", {"operator": "unicom"}) == 0
    assert r.get_sample_value("yunshang_collection_errors_total", {"operator": "unicom"}) == 1
    assert r.get_sample_value("yunshang_collections_total", {"operator": "unicom"}) == 2
    assert r.get_sample_value("yunshang_last_refresh_timestamp_seconds", {"operator": "unicom"}) == NOW.timestamp()
    assert r.get_sample_value("yunshang_zone_vcpus", {"operator": "unicom", "zone": "az1"}) is None
    assert r.get_sample_value("yunshang_zone_vcpus", {"operator": "telecom", "zone": "az1"}) == 64
    assert b"secret" not in generate_latest(r)


def test_quota_units_and_unlimited():
    st = ExporterState(["telecom"])
    st.update(snap("telecom"))
    r = registry(QuotaCollector(st))
    L = {"operator": "telecom", "department": "health"}
    assert r.get_sample_value("yunshang_quota_limit", {**L, "service": "compute", "resource": "cores"}) == 20
    assert r.get_sample_value("yunshang_quota_used_ratio", {**L, "service": "compute", "resource": "cores"}) == 0.2
    assert r.get_sample_value("yunshang_quota_in_use", {**L, "service": "compute", "resource": "ram_bytes"}) == 4096 * 1024 ** 2
    assert r.get_sample_value("yunshang_quota_limit", {**L, "service": "volume", "resource": "volume_bytes"}) is None
    assert r.get_sample_value("yunshang_quota_in_use", {**L, "service": "volume", "resource": "volume_bytes"}) == 100 * GiB


def test_spend_against_ceiling_uses_valid_contract_only():
    st = ExporterState(["telecom", "unicom"])
    st.update(snap("telecom"))
    r = registry(SpendCollector(st, CATALOG, clock=lambda: NOW))
    L = {"operator": "telecom", "department": "health", "contract": "H-TEL"}
    cost = 4 * 30 + 4 * 10 + 100 * 0.5 + 1 * 25
    assert r.get_sample_value("yunshang_tenant_monthly_cost_cny", L) == cost
    assert r.get_sample_value("yunshang_contract_ceiling_cny", L) == 1000
    assert r.get_sample_value("yunshang_contract_ceiling_used_ratio", L) == pytest.approx(cost / 1000)
    assert r.get_sample_value("yunshang_contract_ceiling_cny", {**L, "contract": "H-OLD"}) is None     # expired
    # unicom is not up: ceiling known from the catalog, no cost
    U = {"operator": "unicom", "department": "health", "contract": "H-UNI"}
    assert r.get_sample_value("yunshang_contract_ceiling_cny", U) == 500
    assert r.get_sample_value("yunshang_tenant_monthly_cost_cny", U) is None


def test_sla_per_contract_merges_api_and_service_probes(tmp_path):
    st = ExporterState(["telecom", "unicom"])
    store = ProbeStore(str(tmp_path / "probes.json"))
    api = ProbeTarget("telecom", "api-compute", "http", "http://127.0.0.1:8774/v2.1", max_ok_status=499)
    targets = [api] + department_targets(CATALOG, today=NOW.date())
    portal = next(t for t in targets if t.name == "portal")
    assert (portal.operator, portal.contract) == ("telecom", "H-TEL")
    before = NOW - dt.timedelta(days=1)     # outside the maintenance window
    for _ in range(900):
        store.record(api.key, before, True, False)
    for _ in range(98):
        store.record(portal.key, before, True, False)
    for _ in range(2):
        store.record(portal.key, before, False, False)
    store.record(portal.key, NOW, False, True)          # in maintenance: excluded
    st.set_probe(portal.key, ProbeResult(False, 0.01, NOW.timestamp()))
    r = registry(SlaCollector(st, store, lambda: targets, CATALOG, clock=lambda: NOW))
    C = {"operator": "telecom", "department": "health", "contract": "H-TEL"}
    assert r.get_sample_value("yunshang_sla_probe_samples_total", C) == 1000
    assert r.get_sample_value("yunshang_sla_probe_failures_total", C) == 2
    assert r.get_sample_value("yunshang_sla_availability_ratio", C) == pytest.approx(0.998)
    assert r.get_sample_value("yunshang_sla_target_ratio", C) == 0.999
    assert r.get_sample_value("yunshang_sla_error_budget_remaining_ratio", C) == pytest.approx(-1.0)
    assert r.get_sample_value("yunshang_sla_service_credit_ratio", C) == 0.1
    assert r.get_sample_value("yunshang_sla_breached", C) == 1
    P = {"operator": "telecom", "department": "health", "contract": "H-TEL", "probe": "portal", "kind": "tcp"}
    assert r.get_sample_value("yunshang_probe_success", P) == 0
    assert r.get_sample_value("yunshang_probe_maintenance_samples_total", P) == 1
    assert r.get_sample_value("yunshang_maintenance_active", {"operator": "telecom"}) == 1
    assert r.get_sample_value("yunshang_maintenance_month_seconds", {"operator": "telecom"}) == 7200
    # the unicom backup contract has no samples yet: no availability at all (not 1.0), nor what
    # derives from it; its sample count (0) and target are there
    U = {"operator": "unicom", "department": "health", "contract": "H-UNI"}
    for name in ("yunshang_sla_availability_ratio", "yunshang_sla_error_budget_remaining_ratio",
                 "yunshang_sla_service_credit_ratio", "yunshang_sla_breached"):
        assert r.get_sample_value(name, U) is None, name
    assert r.get_sample_value("yunshang_sla_probe_samples_total", U) == 0
    assert r.get_sample_value("yunshang_sla_target_ratio", U) == 0.999
    assert b"127.0.0.1" not in generate_latest(r)        # target URLs are not exported


def test_probe_store_survives_restart_and_new_month(tmp_path):
    path = str(tmp_path / "s" / "probes.json")
    s = ProbeStore(path)
    s.record("k", NOW, True, False)
    s.record("k", NOW, False, False)
    s.save(NOW)
    s2 = ProbeStore(path)
    assert s2.tally("k", NOW).good == 1 and s2.tally("k", NOW).bad == 1
    dec = NOW + dt.timedelta(days=10)
    assert s2.tally("k", dec).counted == 0
    s2.record("k", dec, True, False)
    s2.save(dec + dt.timedelta(days=40))            # January: December kept as previous, November dropped
    s3 = ProbeStore(path)
    assert s3.tally("k", NOW).counted == 0 and s3.tally("k", dec).good == 1


def test_probe_store_bad_file_names_the_file(tmp_path):
    p = tmp_path / "probes.json"
    p.write_text("{not json")
    with pytest.raises(YunshangError, match="probes.json: probe state file unreadable"):
        ProbeStore(str(p))


@pytest.mark.parametrize("url, root", [
    ("http://127.0.0.1:8774/v2.1/%(tenant_id)s", "http://127.0.0.1:8774/v2.1"),
    ("http://127.0.0.1:8776/v3/$(project_id)s", "http://127.0.0.1:8776/v3"),
    ("http://admin:hunter2@127.0.0.1:5000/v3", "http://127.0.0.1:5000/v3"),
])
def test_api_root(url, root):
    assert api_root(url) == root


def test_service_targets_public_only_one_per_type():
    cat = [{"type": "compute", "endpoints": [{"interface": "public", "url": "http://h:8774/v2.1"},
                                             {"interface": "internal", "url": "http://i:8774/v2.1"}]},
           {"type": "placement", "endpoints": [{"interface": "admin", "url": "http://h:8778"}]},
           {"type": "identity", "endpoints": [{"interface": "public", "url": "http://h:5000/v3"}]}]
    ts = service_targets("telecom", cat)
    assert [(t.name, t.target) for t in ts] == [("api-compute", "http://h:8774/v2.1"), ("api-identity", "http://h:5000/v3")]


def test_probe_without_contract_counts_against_valid_primary():
    cat = Catalog(root="mem", providers=CATALOG.providers, departments=(
        Department("civil", "民政", 2, contracts=(
            Contract("OLD", "telecom", "primary", dt.date(2023, 1, 1), dt.date(2025, 12, 31), 1.0),
            Contract("NEW", "unicom", "primary", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 1.0)),
            requests=(), probes=(Probe("portal", "http", "http://127.0.0.1:1/"),)),))
    [t] = department_targets(cat, today=NOW.date())
    assert (t.operator, t.contract) == ("unicom", "NEW")
    assert department_targets(cat, operators=["telecom"], today=NOW.date()) == []
