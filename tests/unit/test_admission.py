"""Quota admission: fit per zone and resource, department quota usage, and the locked ledger
that keeps two concurrent applies (two processes) from both being admitted past capacity."""
from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_tenant_fixtures as fx  # noqa: E402

from yunshang.admission import ReservationLedger, admit, shortfalls  # noqa: E402
from yunshang.capacity import OperatorSnapshot, QuotaUsage, ZoneCapacity  # noqa: E402
from yunshang.errors import CloudUnavailable, QuotaExceeded  # noqa: E402
from yunshang.tenant import tenant_spec  # noqa: E402

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)


def snapshot(free_vcpu=(10, 10), free_ram_mb=(65536, 65536), free_disk=(1000, 1000), quotas=()):
    zones = []
    for i, z in enumerate(("az1", "az2")):
        zones += [ZoneCapacity("telecom", z, "VCPU", 100, 0, 1.0, 100 - free_vcpu[i]),
                  ZoneCapacity("telecom", z, "MEMORY_MB", 200000, 0, 1.0, 200000 - free_ram_mb[i]),
                  ZoneCapacity("telecom", z, "DISK_GB", 5000, 0, 1.0, 5000 - free_disk[i])]
    return OperatorSnapshot("telecom", NOW, 0.1, True, zones=tuple(zones), quotas=tuple(quotas))


def spec_of(dept="health"):
    cat = fx.catalog()
    return tenant_spec(cat, fx.plan(cat), dept, "telecom")


def test_fits():
    assert shortfalls(spec_of(), snapshot()) == ()


def test_refusal_names_zone_resource_and_amount():
    s = spec_of()  # az1 needs 2 vcpu, az2 needs 1
    found = shortfalls(s, snapshot(free_vcpu=(1, 10)))
    assert [(f.scope, f.resource, f.need, f.available, f.short_by) for f in found] == [
        ("zone az1", "vcpu", 2, 1.0, 1.0)]
    with pytest.raises(QuotaExceeded, match=r"zone az1: vcpu needs 2, 1 available \(short by 1\)"):
        admit(s, lambda: snapshot(free_vcpu=(1, 10)), None)


def test_ram_converted_from_placement_mb():
    found = shortfalls(spec_of(), snapshot(free_ram_mb=(65536, 512)))
    assert [(f.scope, f.resource, f.need, f.available) for f in found] == [("zone az2", "ram_gb", 1, 0.5)]


def test_existing_servers_need_nothing_new():
    s = spec_of()
    assert shortfalls(s, snapshot(free_vcpu=(0, 0)), existing_servers=[x.name for x in s.servers]) == ()


def test_unknown_zone_refused():
    s = spec_of()
    snap = snapshot()
    snap = OperatorSnapshot("telecom", NOW, 0.1, True, zones=tuple(z for z in snap.zones if z.zone == "az1"))
    assert [f.scope for f in shortfalls(s, snap)] == ["zone az2"]


def test_department_quota_usage_counts():
    s = spec_of()
    limit = s.quotas.as_dict()["compute"]["cores"]           # headroom(3) = 4
    hand_made = QuotaUsage("telecom", "health", "p1", "compute", "cores", limit, 2)
    found = shortfalls(s, snapshot(quotas=[hand_made]))
    assert [(f.scope, f.resource, f.need, f.available) for f in found] == [
        ("quota of dept-health", "compute.cores", 5, 4)]
    other_dept = QuotaUsage("telecom", "tourism", "p2", "compute", "cores", 4, 4)
    assert shortfalls(s, snapshot(quotas=[other_dept])) == ()


def test_unreadable_cloud():
    bad = OperatorSnapshot("telecom", NOW, 0.1, False, error="connection refused")
    with pytest.raises(CloudUnavailable, match="connection refused"):
        admit(spec_of(), lambda: bad, None)


def test_ledger_reserves_and_releases(tmp_path):
    led = ReservationLedger("telecom", tmp_path)
    a = admit(spec_of("health"), snapshot, led)
    assert a.reserved == {"az1": {"vcpu": 2, "ram_gb": 3, "disk_gb": 3}, "az2": {"vcpu": 1, "ram_gb": 1, "disk_gb": 1}}
    with led.locked():
        assert led.reserved_by_others("tourism")["az1"]["vcpu"] == 2
        assert led.reserved_by_others("health") == {}
    # tourism needs 2 vcpu in az1; 3 free minus health's 2 reserved -> refused
    with pytest.raises(QuotaExceeded, match="zone az1: vcpu needs 2, 1 available"):
        admit(spec_of("tourism"), lambda: snapshot(free_vcpu=(3, 10)), led)
    led.release("health")
    admit(spec_of("tourism"), lambda: snapshot(free_vcpu=(3, 10)), led)


def test_ledger_reservation_expires(tmp_path):
    clock = [1000.0]
    led = ReservationLedger("telecom", tmp_path, clock=lambda: clock[0], ttl_seconds=60)
    admit(spec_of("health"), snapshot, led)
    clock[0] += 61
    with led.locked():
        assert led.reservations() == {}


# --------------------------------------------------------------------------- two processes
def _apply_in_process(dept: str, ledger_dir: str | None, barrier, results) -> None:
    def slow_live_read():
        time.sleep(0.3)  # a live Placement read takes time: widens the race window
        return snapshot(free_vcpu=(3, 10))   # room for ONE department's 2 vcpu in az1
    led = ReservationLedger("telecom", Path(ledger_dir)) if ledger_dir else None
    barrier.wait()
    try:
        admit(spec_of(dept), slow_live_read, led)
        results[dept] = "admitted"
    except QuotaExceeded as e:
        results[dept] = f"refused: {e}"


def _race(ledger_dir: str | None) -> dict:
    ctx = mp.get_context("fork")
    with ctx.Manager() as m:
        results = m.dict()
        barrier = ctx.Barrier(2)
        ps = [ctx.Process(target=_apply_in_process, args=(d, ledger_dir, barrier, results))
              for d in ("health", "tourism")]
        for p in ps:
            p.start()
        for p in ps:
            p.join(30)
        return dict(results)


def test_two_processes_one_operator_only_one_admitted(tmp_path):
    got = _race(str(tmp_path))
    assert sorted(v.split(":")[0] for v in got.values()) == ["admitted", "refused"], got
    refused = [v for v in got.values() if v.startswith("refused")][0]
    assert "zone az1: vcpu needs 2, 1 available (short by 1)" in refused


def test_without_the_ledger_both_would_be_admitted():
    """The control: the same race with no lock admits both — so the test above can fail."""
    got = _race(None)
    assert got == {"health": "admitted", "tourism": "admitted"}
