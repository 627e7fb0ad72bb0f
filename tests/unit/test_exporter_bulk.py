"""The bulk reader's counting (pure functions over recorded API items) and the exporter's
self-metrics over families and API calls (hand-built snapshots, a fresh registry per test)."""
from __future__ import annotations

import datetime as dt
import subprocess
import shutil

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.collectors import SelfCollector
from exporters.state import ExporterState
from yunshang.capacity import FAMILIES, ApiCall, FamilyRead, OperatorSnapshot
from yunshang.openstack.capacity import count_compute_usage, count_network_usage, count_volume_usage

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
EARLIER = NOW - dt.timedelta(minutes=7)


def test_compute_usage_counts_every_state_but_soft_deleted():
    usages = [
        {"tenant_id": "p1", "instance_id": "a", "state": "active", "vcpus": 2, "memory_mb": 2048, "ended_at": None},
        {"tenant_id": "p1", "instance_id": "b", "state": "error", "vcpus": 1, "memory_mb": 512, "ended_at": None},
        {"tenant_id": "p1", "instance_id": "c", "state": "stopped", "vcpus": 4, "memory_mb": 4096, "ended_at": None},
        {"tenant_id": "p1", "instance_id": "d", "state": "soft-delete", "vcpus": 8, "memory_mb": 8192, "ended_at": None},
        {"tenant_id": "p1", "instance_id": "e", "state": "terminated", "vcpus": 8, "memory_mb": 8192,
         "ended_at": "2026-11-26T11:59:30"},                                            # deleted a moment ago
    ]
    unlaunched = [
        {"tenant_id": "p2", "id": "f", "status": "BUILD", "flavor": {"vcpus": 1, "ram": 1024}},
        {"tenant_id": "p2", "id": "g", "status": "ERROR", "flavor": {"vcpus": 2, "ram": 256}},   # never scheduled
        {"tenant_id": "p1", "id": "b", "status": "ERROR", "flavor": {"vcpus": 1, "ram": 512}},   # in both: once
    ]
    groups = [{"project_id": "p2"}, {"project_id": "p2"}, {"project_id": "p3"}]
    got = count_compute_usage(usages, unlaunched, groups)
    assert got == {"p1": {"instances": 3, "cores": 7, "ram": 6656, "server_groups": 0},
                   "p2": {"instances": 2, "cores": 3, "ram": 1280, "server_groups": 2},
                   "p3": {"instances": 0, "cores": 0, "ram": 0, "server_groups": 1}}


def test_network_usage_counts_per_resource_and_project():
    got = count_network_usage({"port": [{"project_id": "a"}, {"project_id": "a"}, {"project_id": "b"}],
                               "router": [{"project_id": "b"}], "network": []})
    assert got == {"a": {"port": 2}, "b": {"port": 1, "router": 1}}


def test_volume_usage_counts_snapshots_against_gigabytes():
    vols = [{"os-vol-tenant-attr:tenant_id": "p", "size": 10}, {"os-vol-tenant-attr:tenant_id": "p", "size": 5},
            {"os-vol-tenant-attr:tenant_id": "q", "size": 1}]
    snaps = [{"os-extended-snapshot-attributes:project_id": "p", "size": 5}]
    backups = [{"os-backup-project-attr:project_id": "q", "size": 1}, {"os-backup-project-attr:project_id": "q", "size": 3}]
    got = count_volume_usage(vols, snaps, backups)
    assert got["p"] == {"volumes": 2, "gigabytes": 20, "snapshots": 1, "backups": 0, "backup_gigabytes": 0}
    assert got["q"] == {"volumes": 1, "gigabytes": 1, "snapshots": 0, "backups": 2, "backup_gigabytes": 4}


def _reg(st):
    r = CollectorRegistry(auto_describe=False)
    r.register(SelfCollector(st))
    return r


def test_family_up_and_age_and_api_histogram():
    st = ExporterState(["telecom"])
    fams = tuple(FamilyRead(f, f != "volume_usage", "" if f != "volume_usage" else "cloud 'telecom': cinder volumes: HTTP 503",
                            NOW if f != "volume_usage" else EARLIER) for f in FAMILIES)
    calls = (ApiCall("compute", 0.004, True), ApiCall("compute", 0.3, True), ApiCall("volume", 0.02, False),
             ApiCall("compute", 40.0, True))
    st.update(OperatorSnapshot("telecom", NOW, 1.5, True, families=fams, api_calls=calls))
    r = _reg(st)
    L = {"operator": "telecom"}
    assert r.get_sample_value("yunshang_operator_up", L) == 1
    assert r.get_sample_value("yunshang_family_up", {**L, "family": "capacity"}) == 1
    assert r.get_sample_value("yunshang_family_up", {**L, "family": "volume_usage"}) == 0
    assert r.get_sample_value("yunshang_family_last_refresh_timestamp_seconds",
                              {**L, "family": "volume_usage"}) == EARLIER.timestamp()
    C = {**L, "service": "compute"}
    assert r.get_sample_value("yunshang_openstack_api_calls_total", C) == 3
    assert r.get_sample_value("yunshang_openstack_api_errors_total", {**L, "service": "volume"}) == 1
    assert r.get_sample_value("yunshang_openstack_api_errors_total", C) == 0
    h = "yunshang_openstack_api_call_duration_seconds"
    assert r.get_sample_value(f"{h}_bucket", {**C, "le": "0.005"}) == 1
    assert r.get_sample_value(f"{h}_bucket", {**C, "le": "0.25"}) == 1
    assert r.get_sample_value(f"{h}_bucket", {**C, "le": "0.5"}) == 2
    assert r.get_sample_value(f"{h}_bucket", {**C, "le": "30.0"}) == 2
    assert r.get_sample_value(f"{h}_bucket", {**C, "le": "+Inf"}) == 3
    assert r.get_sample_value(f"{h}_count", C) == 3
    assert r.get_sample_value(f"{h}_sum", C) == pytest.approx(40.304)
    # counters accumulate over refreshes
    st.update(OperatorSnapshot("telecom", NOW, 1.0, True, families=fams, api_calls=calls[:1]))
    assert _reg(st).get_sample_value("yunshang_openstack_api_calls_total", C) == 4


def test_failed_refresh_without_families_marks_all_down_keeping_read_times():
    st = ExporterState(["unicom"])
    st.update(OperatorSnapshot("unicom", EARLIER, 1.0, True))
    st.update(OperatorSnapshot("unicom", NOW, 1.0, False, error="cloud 'unicom': keystone: cannot connect"))
    r = _reg(st)
    for f in FAMILIES:
        lv = {"operator": "unicom", "family": f}
        assert r.get_sample_value("yunshang_family_up", lv) == 0
        assert r.get_sample_value("yunshang_family_last_refresh_timestamp_seconds", lv) == EARLIER.timestamp()


def test_self_metrics_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (make system-deps)")
    st = ExporterState(["telecom"])
    st.update(OperatorSnapshot("telecom", NOW, 1.0, True, api_calls=(ApiCall("network", 0.01, True),)))
    r = subprocess.run([promtool, "check", "metrics"], input=generate_latest(_reg(st)), capture_output=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
