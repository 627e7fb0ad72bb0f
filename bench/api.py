"""Benchmark: the HTTP API on PostgreSQL, p50/p99 latency of list and submit with 100 concurrent
sessions, against the same calls from 1 session in the same run (the ratio is what counts).

    .venv/bin/python bench/api.py [--sessions 100] [--calls 5] [--processes 2]

Needs the devcloud (`yunshang devcloud up`: the center's Keystone and its people) for real tokens;
starts its own PostgreSQL cluster and `yunshang api serve` processes, and stops them at the end.
Each session is its own Keystone token of health-it (validated once by the server, then cached),
its own HTTP connection; list = GET /api/v1/requests (the department's requests), submit = POST
/api/v1/requests (a one-entry document: schema, catalog check, insert, hash-chained audit entry).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = {"department": "health", "title": "bench", "requests": [
    {"name": "bench-web", "template": "web-standard", "size": "small", "count": 1}]}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(servers, tokens, calls, kind):
    import httpx

    lat: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def session(i, token):
        s = servers[i % len(servers)]
        with httpx.Client(base_url=s.url, headers={"X-Auth-Token": token}, timeout=120) as c:
            c.get("/api/v1/whoami")                       # the token validated (and cached) before timing
            start.wait()
            for _ in range(calls):
                t0 = time.perf_counter()
                r = c.get("/api/v1/requests") if kind == "list" else c.post("/api/v1/requests", json=DOC)
                dt = time.perf_counter() - t0
                assert r.status_code in (200, 201), r.text[:200]
                with lock:
                    lat.append(dt)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(lambda it: session(*it), enumerate(tokens)))
    return lat, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--calls", type=int, default=5, help="calls per session and kind")
    ap.add_argument("--processes", type=int, default=2, help="API processes on the one database")
    args = ap.parse_args()
    from tests.api.conftest import SAMPLE, new_db, start_server, stop_server
    from tests.lifecycle.pgcluster import throwaway_cluster
    from yunshang.devcloud import Devcloud
    from yunshang.openstack.identity import token_of_cloud

    dc = Devcloud()
    if not dc.healthy():
        sys.exit("the devcloud is not healthy: run `yunshang devcloud up` (the center's Keystone)")
    clouds = str(dc.layout.clouds_file)
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(lambda _: token_of_cloud(clouds, "person-health-it"), range(args.sessions)))
    with throwaway_cluster("fsync=off", f"max_connections={args.sessions + 100}") as base, \
            tempfile.TemporaryDirectory() as tmp:
        db = new_db(base)
        servers = [start_server(SAMPLE, clouds, db, Path(tmp), cache_seconds=300) for _ in range(args.processes)]
        try:
            print(f"API on PostgreSQL: {args.processes} process(es), {args.calls} calls per session; "
                  f"{os.cpu_count()} CPUs")
            print(f"{'kind':7} {'sessions':>8} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>8} "
                  f"{'p50 x1':>7}")
            for kind in ("submit", "list"):
                base_lat, _ = run(servers, tokens[:1], args.calls * 4, kind)
                b50 = statistics.median(base_lat)
                for n in (1, args.sessions):
                    lat, wall = (base_lat, None) if n == 1 else run(servers, tokens[:n], args.calls, kind)
                    rate = len(lat) / wall if wall else len(lat) / sum(lat)
                    print(f"{kind:7} {n:8d} {len(lat):6d} {statistics.median(lat) * 1000:8.1f} "
                          f"{pct(lat, 99) * 1000:8.1f} {rate:8.1f} {statistics.median(lat) / b50:7.2f}")
        finally:
            for s in servers:
                stop_server(s)


if __name__ == "__main__":
    main()
