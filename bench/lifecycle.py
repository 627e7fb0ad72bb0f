"""Benchmark: the lifecycle store's approve path (the capacity check under the write lock),
SQLite (embedded, WAL) vs a real PostgreSQL 15 server, same run, ratios against SQLite single-writer.

    .venv/bin/python bench/lifecycle.py [--requests 200] [--engineers 1 4]

For each backend and each number of concurrent engineers (threads, one connection each), N reviewed
requests are approved as fast as possible against ample capacity (every approval takes the lock,
sums the zone's reservations, inserts reservations, updates the request, appends the hash-chained
audit entry). Prints approvals per second, p50/p99 latency and the ratio to the baseline
(SQLite, 1 engineer). Also checks the audit chain afterwards. Starts its own PostgreSQL cluster
(Debian postgresql, initdb as the postgres user in a temp dir) and stops it at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from yunshang import lifecycle as lc  # noqa: E402
from yunshang.store import CapacityRow, PlacementRow, open_store  # noqa: E402


@contextlib.contextmanager
def postgres():
    from tests.lifecycle.pgcluster import PostgresMissing, throwaway_cluster

    try:
        with throwaway_cluster() as url:
            yield url
    except PostgresMissing as exc:
        sys.exit(str(exc))


def fresh(url_base: str, kind: str, tag: str) -> str:
    if kind == "sqlite":
        return "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="yunshang-bench-"), f"{tag}.db")
    import psycopg

    with psycopg.connect(url_base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{tag}"')
    return url_base.rsplit("/", 1)[0] + "/" + tag


def run(url: str, n: int, engineers: int) -> dict:
    def doc(i: int):
        return lc.parse_request_document({"department": "health", "requests": [
            {"name": f"r{i}", "template": "web-standard", "size": "small", "count": 1}]}, "bench", default_mlps=3)

    with open_store(url) as s:
        s.set_capacity([CapacityRow("telecom", "az1", 1e9, 1e9, 1e12)], "bench")
        ids = []
        for i in range(n):
            r = s.submit(doc(i), "bench")
            s.review(r.id, "bench", [PlacementRow(f"r{i}", "primary", "telecom", "C", "az1", 1, 2, 4, 50, 1, 1.0)])
            ids.append(r.id)
    chunks = [ids[i::engineers] for i in range(engineers)]
    lat: list[float] = []
    lock = threading.Lock()

    def worker(chunk):
        with open_store(url) as st:
            mine = []
            for rid in chunk:
                t0 = time.perf_counter()
                st.approve(rid, "bench", "bench")
                mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    [t.start() for t in ts]
    [t.join() for t in ts]
    wall = time.perf_counter() - t0
    with open_store(url) as s:
        ok, _, entries = s.verify_audit()
        approved = len(s.list_requests(state=lc.APPROVED))
    lat.sort()
    return {"per_second": n / wall, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, "chain_ok": ok and approved == n,
            "audit_entries": entries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--engineers", type=int, nargs="+", default=[1, 4])
    a = ap.parse_args()
    rows = []
    with postgres() as pg:
        for kind in ("sqlite", "postgresql"):
            for e in a.engineers:
                r = run(fresh(pg, kind, f"b_{kind}_{e}_{os.getpid()}"), a.requests, e)
                rows.append((kind, e, r))
    base = rows[0][2]["per_second"]
    print(f"lifecycle store: {a.requests} approvals each (baseline: sqlite, {a.engineers[0]} engineer)")
    print(f"{'backend':12} {'engineers':>9} {'approvals/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12} chain")
    for kind, e, r in rows:
        print(f"{kind:12} {e:>9} {r['per_second']:>12.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['per_second'] / base:>11.2f}x {'ok' if r['chain_ok'] else 'BROKEN'}")
    if not all(r["chain_ok"] for _, _, r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
