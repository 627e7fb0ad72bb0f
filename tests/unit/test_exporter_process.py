"""The collector child process of `exporter serve` (issue 14): a real spawned process runs the
Exporter and sends every page it renders; the serving side hands out the latest one, and learns
when the child dies. The reader is a fixed snapshot (no OpenStack here; tests/exporters runs the
same path against the devcloud)."""
from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time

from exporters.service import CollectorProcess, Exporter
from exporters.store import ProbeStore
from yunshang.capacity import OperatorSnapshot, ZoneCapacity
from yunshang.catalog import load_catalog

CATALOG = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prefecture")


def _build(catalog_dir: str, interval: float) -> Exporter:
    """Runs in the child: an Exporter whose reader says which process read it (in the zone's name)."""
    catalog = load_catalog(catalog_dir)

    def read(prov):
        zone = f"pid{os.getpid()}"
        return OperatorSnapshot(prov.name, dt.datetime.now(dt.timezone.utc), 0.01, ok=True,
                                zones=(ZoneCapacity(prov.name, zone, "VCPU", 64, 0, 4.0, 8),))

    return Exporter(catalog, ["telecom"], read, ProbeStore(None), interval_seconds=interval,
                    probe_interval_seconds=3600)


def _wait(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def _refreshes(page: bytes) -> float:
    for line in page.decode().splitlines():
        if line.startswith('yunshang_collections_total{operator="telecom"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_pages_come_from_the_child_and_keep_coming():
    exits: list = []
    cp = CollectorProcess(_build, (CATALOG, 0.2), on_exit=exits.append)
    cp.start()
    try:
        assert cp.wait_first_page(60)
        assert cp.pid != os.getpid()
        page = _wait(lambda: cp.page() if _refreshes(cp.page()) >= 1 else None)
        # read in the child, not here; rendered there, served here as is (gzip too)
        assert f'zone="pid{cp.pid}"'.encode() in page
        assert f'zone="pid{os.getpid()}"'.encode() not in page
        import gzip

        assert gzip.decompress(cp.page_gzip()).startswith(b"# HELP")
        first = _refreshes(page)
        _wait(lambda: _refreshes(cp.page()) >= first + 3)      # it keeps refreshing every 0.2 s
    finally:
        cp.stop()
    assert exits == []                  # stopped on purpose: not reported as a failure
    assert not cp._proc.is_alive()


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[16])      # field 19: nice


def test_the_child_yields_the_cpu_to_scrapes():
    """The collector runs COLLECTOR_NICENESS below the serving process: on busy cores the kernel
    answers a scrape before it lets the refresh parse on."""
    from exporters.service import COLLECTOR_NICENESS

    cp = CollectorProcess(_build, (CATALOG, 0.2), on_exit=lambda code: None)
    cp.start()
    try:
        assert cp.wait_first_page(60)
        assert _nice(cp.pid) == min(19, _nice(os.getpid()) + COLLECTOR_NICENESS)
        assert _nice(os.getpid()) == os.nice(0)          # the serving process itself is untouched
    finally:
        cp.stop()


def test_a_dead_child_is_reported_with_its_exit_code():
    exited = threading.Event()
    codes: list = []

    def on_exit(code):
        codes.append(code)
        exited.set()

    cp = CollectorProcess(_build, (CATALOG, 5.0), on_exit=on_exit)
    cp.start()
    try:
        assert cp.wait_first_page(60)
        last = cp.page()
        os.kill(cp.pid, signal.SIGKILL)
        assert exited.wait(30)
        assert codes == [-signal.SIGKILL]
        assert cp.page() == last        # the last page is still there (serve stops on its own)
    finally:
        cp.stop()


def test_a_collector_that_cannot_build_exits_3():
    exited = threading.Event()
    codes: list = []
    cp = CollectorProcess(_build, ("/nonexistent/catalog", 5.0), on_exit=lambda c: (codes.append(c), exited.set()))
    cp.start()
    try:
        assert not cp.wait_first_page(60)
        assert exited.wait(30)
        assert codes == [3]
    finally:
        cp.stop()
