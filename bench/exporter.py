"""Benchmark: yunshang's exporter vs the canonical prometheus-openstack-exporter, same cloud, same run.

    .venv/bin/python bench/exporter.py [--clouds FILE] [--operator telecom] [--projects 200]
                                       [--servers 1000] [--baseline unicom:200:1000] [--peer]

1. Grows one devcloud operator to --projects department projects (``bench-NNN``, tagged per the
   project convention) and --servers servers (fake virt driver, one multi-create request per
   project, 4 in flight), bounded by --grow-timeout; prints how many it reached. Idempotent: re-runs
   only add what is missing. With --baseline OP:PROJECTS:SERVERS a second, smaller operator of the
   same devcloud likewise, measured first in the same run (steps 2-5), so that the growth of the
   refresh cost per server is printed from two points taken minutes apart on one machine.
2. Writes a bench catalog (the sample prefecture + one department per bench project).
3. Starts our exporter (refresh every --interval, 15 s) and measures: 1 cold + 4 warm refreshes
   (``yunshang_collection_duration_seconds``), each warm one followed at once by one round of the
   FLOOR in the gap before the next refresh; then scrape latency the way Prometheus scrapes
   (its headers, gzip; one scrape every --scrape-every at most) until 500 scrapes, 3 refreshes and
   100 scrapes during refreshes, each followed by a scrape of the same page served by a process
   doing nothing else (the scrape floor, same windows); peak RSS and CPU of server + collector;
   then every bench project's quota limits and usage on the page against OpenStack's quota sets
   (--no-verify to skip; a difference exits 1). With --peer, prometheus-openstack-exporter likewise
   (refresh ``openstack_exporter_cache_refresh_duration_seconds``, scrapes, families), on the
   baseline operator when there is one.
4. The FLOOR: the fewest API calls that return the facts a refresh must read every time (Keystone
   projects, every page; Nova aggregates, hypervisors, the usage report of every instance, servers
   in BUILD/ERROR, server groups; Placement providers and each node's inventories and usages;
   Neutron's seven counted collections with fields=project_id; Cinder volumes, snapshots,
   backups), made with plain openstacksdk sessions, as concurrently as the exporter makes them, and
   nothing done with the answers (median of the 4 rounds). Quota LIMITS are not in the floor: they
   change rarely and the exporter reads them on a slower cycle (a tenth of the projects per
   refresh once warm).
5. Prints a table with ratios (peer / ours, ours / floor) and the family coverage, and ends with
   one JSON line: {"servers", "projects", "refresh_seconds" (our warm refresh, median),
   "floor_seconds", "peer_refresh_seconds" (null without --peer), "scrape_p99_ms", "rss_mb", ...}.

The peer is the Debian package ``prometheus-openstack-exporter`` (0.1.4, Python 2-era code): it
is started with a sitecustomize shim (urlparse/BaseHTTPServer/SocketServer -> Python 3 modules,
cinderclient.v2 -> v3) and two str->bytes fixes in its HTTP handler (a temp copy; its collection
code is untouched), its swift collector disabled (no Swift here), credentials from OS_* environment
variables of the same admin user.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from typing import Callable

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHIM = '''import sys, urllib.parse, http.server, socketserver
sys.modules.setdefault("urlparse", urllib.parse)
sys.modules.setdefault("BaseHTTPServer", http.server)
sys.modules.setdefault("SocketServer", socketserver)
try:
    import cinderclient.v3 as _v3, cinderclient.v3.client as _v3c
    sys.modules.setdefault("cinderclient.v2", _v3)
    sys.modules.setdefault("cinderclient.v2.client", _v3c)
except ImportError:
    pass
'''


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_clouds(arg: str | None) -> str:
    if arg:
        return arg
    ready = pathlib.Path("/tmp/yunshang-devcloud-ready")
    if ready.exists():
        return ready.read_text().strip()
    from yunshang.devcloud import Devcloud

    return str(Devcloud().layout.clouds_file)


def connect(clouds: str, cloud: str):
    import openstack.config
    import openstack.connection

    cfg = openstack.config.OpenStackConfig(config_files=[clouds], vendor_files=[], load_envvars=False)
    return openstack.connection.Connection(config=cfg.get_one(cloud=cloud))


# ----------------------------------------------------------------------------- grow
def _ensure_project(conn, have: dict, admin, role, i: int):
    """The bench project ``dept-bench-NNN`` (tagged per the project convention, admin role, quota for 100 servers)."""
    name = f"dept-bench-{i:03d}"
    for attempt in range(5):        # the devcloud may be restarted under us: retry
        try:
            if name in have:            # made by an earlier run (role and quota set then)
                return have[name]
            p = conn.identity.find_project(name, domain_id="default")
            if p is None:
                p = conn.identity.create_project(
                    name=name, domain_id="default",
                    tags=["yunshang", f"department:bench-{i:03d}", f"contract:BENCH-{i:03d}", "mlps:2"])
            conn.identity.assign_project_role_to_user(p, admin, role)
            conn.compute.update_quota_set(p.id, instances=100, cores=100, ram=100 * 1024)
            return p
        except Exception as exc:  # noqa: BLE001
            log(f"{name}: {type(exc).__name__}; retrying")
            time.sleep(5 * (attempt + 1))
    return None


def _project_conn(conn, project_id: str):
    """A connection scoped to project_id, its token got by re-scoping the admin's token: no password
    check, which costs Keystone a bcrypt hash (~0.3-3 s of CPU on this loaded machine) per project."""
    import openstack.connection
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Token(auth_url=conn.session.auth.auth_url, token=conn.auth_token, project_id=project_id)
    return openstack.connection.Connection(session=ks_session.Session(auth=auth, verify=conn.session.verify),
                                           region_name=conn.config.get_region_name())


def grow(clouds: str, cloud: str, n_projects: int, n_servers: int, timeout: float,
         workers: int = 4, max_building: int = 400) -> tuple[int, int, float]:
    """Grow the operator to n_projects bench projects and n_servers bench servers, bounded by timeout.

    Projects are made `workers` at a time. Servers are asked for in one multi-create request per
    project (its share, at most 50), `workers` requests in flight, and no new request while more than
    `max_building` servers are still building (a deeper queue only makes nova's RPCs time out).
    What exists is counted from one summary listing (names ``bench-NNN-...``), never per project."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.monotonic()
    conn = connect(clouds, cloud)
    admin = conn.identity.find_user("admin", domain_id="default")
    role = conn.identity.find_role("admin")
    have = {p.name: p for p in conn.identity.projects(domain_id="default", limit=1000)}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        projects = [p for p in pool.map(lambda i: _ensure_project(conn, have, admin, role, i), range(n_projects)) if p]
    log(f"projects: {len(projects)} (in {time.monotonic() - t0:.0f}s)")
    failed = [s.id for s in _bench_servers(conn, "ERROR")]
    if failed:   # e.g. builds cut short by a compute restart: replace them
        _delete_servers(conn, failed)
        while _count(conn, "ERROR") and time.monotonic() - t0 < timeout:
            time.sleep(5)
        log(f"deleted {len(failed)} bench servers in ERROR")
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    image = conn.image.find_image("cirros", ignore_missing=False)
    mine: dict[str, int] = {}
    for s in _bench_servers(conn):
        mine[s.name[len("bench-"):len("bench-") + 3]] = mine.get(s.name[len("bench-"):len("bench-") + 3], 0) + 1
    count = sum(mine.values())
    share = -(-n_servers // max(1, len(projects)))
    todo = []                      # (project, how many) until n_servers
    for p in projects:
        want = min(50, share - mine.get(p.name[-3:], 0), n_servers - count - sum(w for _, w in todo))
        if want > 0:
            todo.append((p, want))
    log(f"servers: {count} bench servers exist; asking for {sum(w for _, w in todo)} more in {len(todo)} requests")
    asked = [0]
    g0 = time.monotonic()

    def boot(item) -> None:
        p, want = item
        if time.monotonic() - t0 > timeout:
            return
        pconn = _project_conn(conn, p.id)
        try:
            pconn.compute.create_server(name=f"bench-{p.name[-3:]}-{mine.get(p.name[-3:], 0)}", flavor_id=flavor.id,
                                        image_id=image.id, networks="none", min_count=want, max_count=want)
            asked[0] += want
        except Exception as exc:  # noqa: BLE001 - report and keep going within the time bound
            log(f"boot in {p.name} failed: {type(exc).__name__}: {str(exc)[:120]}")
            time.sleep(2)

    step = 20 * workers
    for k in range(0, len(todo), step):
        while time.monotonic() - t0 < timeout:
            building = _count(conn, "BUILD")
            if building <= max_building:
                break
            time.sleep(10)
        active = _count(conn, "ACTIVE")
        rate = (active - count) / max(1e-9, (time.monotonic() - g0) / 60)
        log(f"servers ACTIVE: {active}, building: {building}, requested this run: {asked[0]} "
            f"({rate:.0f} ACTIVE/min this run)")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(boot, todo[k:k + step]))
    # wait (bounded) until nova has them ACTIVE
    deadline = t0 + timeout
    while True:
        building = _count(conn, "BUILD")
        active = _count(conn, "ACTIVE")
        if active >= min(count + asked[0], n_servers) or time.monotonic() > deadline or not building:
            break
        log(f"servers ACTIVE: {active}, building: {building}")
        time.sleep(30)
    log(f"grow: {active} ACTIVE ({active - count} new in {(time.monotonic() - g0) / 60:.1f} min, "
        f"{(active - count) / max(1e-9, (time.monotonic() - g0) / 60):.0f}/min)")
    return len(projects), active, time.monotonic() - t0


def _bench_servers(conn, status: str | None = None) -> list:
    """The bench servers (optionally in one status) from the summary list: ids and names only.
    The detailed list of 1,000 servers costs nova and neutron ~25 s of the cores the builds need."""
    return list(conn.compute.servers(details=False, all_projects=True, name="^bench-", limit=1000,
                                     **({"status": status} if status else {})))


def _count(conn, status: str) -> int:
    return len(_bench_servers(conn, status))


def _delete_servers(conn, ids) -> set[str]:
    """Ask nova to delete these servers, 4 at a time; returns the ids it accepted (others are logged)."""
    from concurrent.futures import ThreadPoolExecutor

    def delete(sid: str) -> str | None:
        try:
            conn.compute.delete_server(sid, ignore_missing=True)
            return sid
        except Exception as exc:  # noqa: BLE001 - the caller retries on its next pass
            log(f"delete {sid}: {type(exc).__name__}")
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return {sid for sid in pool.map(delete, ids) if sid}


def cleanup(clouds: str, cloud: str, timeout: float) -> tuple[int, int]:
    """Delete the bench servers and projects (the devcloud is shared)."""
    conn = connect(clouds, cloud)
    t0 = time.monotonic()
    deleted: set[str] = set()
    left = -1
    while time.monotonic() - t0 < timeout:
        try:
            servers = _bench_servers(conn)
        except Exception as exc:  # noqa: BLE001 - the shared devcloud may be restarting
            log(f"listing bench servers: {type(exc).__name__}; retrying")
            time.sleep(10)
            continue
        left = len(servers)
        if not servers:
            break
        deleted |= _delete_servers(conn, [s.id for s in servers if s.id not in deleted])
        time.sleep(10)
    projects = [p for p in conn.identity.projects(domain_id="default", limit=1000) if p.name.startswith("dept-bench-")]
    if left == 0:
        for p in projects:
            conn.identity.delete_project(p, ignore_missing=True)
    else:
        log(f"{left} bench servers still deleting after {timeout:.0f}s; projects kept")
    return len(deleted), len(projects) if left == 0 else 0


def bench_catalog(dest: pathlib.Path, operator: str, n_projects: int) -> pathlib.Path:
    src = ROOT / "examples" / "prefecture"
    shutil.copytree(src, dest, dirs_exist_ok=True)
    for i in range(n_projects):
        doc = {"name": f"bench-{i:03d}", "display_name": f"基准部门{i:03d}", "mlps_level": 2,
               "contracts": [{"id": f"BENCH-{i:03d}", "provider": operator, "role": "primary",
                              "start": "2026-01-01", "end": "2026-12-31", "ceiling_cny_per_month": 10000}],
               "requests": []}
        (dest / "departments" / f"bench-{i:03d}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    return dest


# ----------------------------------------------------------------------------- measure
def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def families(text: str) -> list[str]:
    return sorted({ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ")})


def sample(text: str, name: str) -> float | None:
    for ln in text.splitlines():
        if ln.startswith(name + "{") or ln.startswith(name + " "):
            return float(ln.rsplit(" ", 1)[1])
    return None


def _page_refresh_ts(head: bytes) -> float | None:
    """yunshang_last_refresh_timestamp_seconds from the top of our page (the self-metrics come first)."""
    k = head.find(b"\nyunshang_last_refresh_timestamp_seconds{")
    if k < 0:
        return None
    end = head.find(b"\n", k + 1)
    return float(head[head.rfind(b" ", k, end) + 1:end])


# what Prometheus 2.x/3.x sends on every scrape (scrape_config defaults: enable_compression true)
PROMETHEUS_HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
                      "Accept-Encoding": "gzip", "User-Agent": "Prometheus/bench",
                      "X-Prometheus-Scrape-Timeout-Seconds": "10"}


def scrape_latency(url: str, n: int, refreshes: int = 0, max_seconds: float = 600, gzip_: bool = True,
                   every: float = 0.0, ref_url: str | None = None, min_refreshing: int = 0,
                   max_refreshes: int = 20) -> dict:
    """Sequential scrapes: at least n, and (with refreshes) until that many refreshes completed while
    scraping (bounded by max_seconds). Returns p50/p99 of the answered scrapes, the p99 of those that
    started while a refresh was in flight, and how many failed. A refresh whose page says
    last_refresh_timestamp T is in flight from T (when its reading began) until the first scrape that
    gets its page (reading, parsing and rendering included). A scrape fails after 10 s; after three
    failures in a row the exporter is taken as hung and the rest of the n count as failed.
    With gzip_ (the default) the request carries Prometheus's own headers (Accept-Encoding: gzip);
    a scrape's time is until the last byte of the answer is read (decompressing is the client's).
    ``every`` > 0 paces the scrapes (one started every that many seconds, at most): back to back, the
    scraping client alone keeps one of this machine's two cores busy, competing with what it measures.
    ``ref_url``: the floor, scraped right after each scrape of url the same way (a server doing
    nothing but hand out fixed bytes: ``static_server``); its p99s come back as ``ref_*``, over the
    same refresh windows. ``min_refreshing``: go on (up to ``max_refreshes`` refreshes) until that many
    scrapes started while a refresh was in flight, so that a short refresh still gives a p99 of
    enough scrapes."""
    headers = PROMETHEUS_HEADERS if gzip_ else {"User-Agent": "bench"}

    def fetch(u: str) -> tuple[float, bytes, bool]:
        t0 = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(u, headers=headers), timeout=10) as r:
            body = r.read()
            gz = r.headers.get("Content-Encoding") == "gzip"
        return time.perf_counter() - t0, body, gz

    lat: list[tuple[float, float, float | None]] = []     # (wall start, seconds, refresh ts on the page)
    ref: list[tuple[float, float]] = []                   # (wall start of the paired scrape of url, seconds)
    failed, in_a_row, i = 0, 0, 0
    t_end = time.monotonic() + max_seconds
    seen: dict[float, float] = {}                          # refresh ts -> wall time its page was first served
    closed, in_windows = 0, 0

    def more() -> bool:
        if i < n:
            return True
        if not refreshes or not lat or time.monotonic() >= t_end or closed >= max_refreshes:
            return False
        return closed < refreshes or in_windows < min_refreshing

    while more():
        i += 1
        if every > 0 and lat:
            time.sleep(max(0.0, lat[-1][0] + every - time.time()))
        w = time.time()
        try:
            dt_s, body, gz = fetch(url)
            head = zlib.decompressobj(wbits=31).decompress(body, 20000) if gz else body[:20000]
            ts = _page_refresh_ts(head) if refreshes else None
            lat.append((w, dt_s, ts))
            if ts is not None and ts not in seen:
                seen[ts] = w
                wins = [(t, seen[t]) for t in seen if t >= lat[0][0]]
                closed = len(wins)
                in_windows = sum(1 for x, _, _ in lat if any(a <= x < b for a, b in wins))
            in_a_row = 0
        except OSError as exc:
            failed += 1
            in_a_row += 1
            log(f"scrape {i} of {url} failed: {type(exc).__name__}: {exc}")
            if in_a_row == 3:
                log(f"{url} stopped answering after {len(lat)} scrapes")
                failed += max(0, n - i)
                break
            continue
        if ref_url:
            try:
                ref.append((w, fetch(ref_url)[0]))
            except OSError as exc:
                log(f"scrape of the floor server {ref_url} failed: {type(exc).__name__}: {exc}")
    if not lat:
        return {"p50": float("nan"), "p99": float("nan"), "p99_refreshing": float("nan"), "failed": failed,
                "scrapes": 0, "scrapes_refreshing": 0}
    windows = [(t, seen[t]) for t in seen if t >= lat[0][0]]

    def refreshing(w: float) -> bool:
        return any(a <= w < b for a, b in windows)

    def p99(xs):
        xs = sorted(xs)
        return xs[max(0, int(len(xs) * 0.99) - 1)] if xs else float("nan")

    during = [d for w, d, _ in lat if refreshing(w)]
    out = {"p50": statistics.median(d for _, d, _ in lat), "p99": p99(d for _, d, _ in lat),
           "p99_refreshing": p99(during), "failed": failed, "scrapes": len(lat), "scrapes_refreshing": len(during),
           "refreshes_while_scraping": len(windows)}
    if ref:
        out.update(ref_p50=statistics.median(d for _, d in ref), ref_p99=p99(d for _, d in ref),
                   ref_p99_refreshing=p99(d for w, d in ref if refreshing(w)))
    return out


STATIC_SERVER = """import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
plain, gz = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        z = "gzip" in self.headers.get("Accept-Encoding", "")
        body = gz if z else plain
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        if z:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def static_server(tmp: pathlib.Path, page: bytes) -> tuple[subprocess.Popen, str]:
    """The floor of a scrape on this machine: a process doing nothing but hand out ``page`` (plain, or
    gzip-compressed once up front), the way ``exporter serve`` does (ThreadingHTTPServer, bytes in memory)."""
    import gzip

    (tmp / "floor-page.txt").write_bytes(page)
    (tmp / "floor-page.txt.gz").write_bytes(gzip.compress(page, compresslevel=5))
    (tmp / "static_server.py").write_text(STATIC_SERVER)
    port = free_port()
    proc = start([sys.executable, str(tmp / "static_server.py"), str(port), str(tmp / "floor-page.txt"),
                  str(tmp / "floor-page.txt.gz")], dict(os.environ), tmp / "static_server.log")
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: proc.poll() is None and get(url), 30, f"the floor server on :{port}")
    return proc, url


def start(argv, env, log_path, cwd=None):
    fh = open(log_path, "wb")
    return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.5)
    raise SystemExit(f"bench: timed out waiting for {what}")


def _rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) summed over the process and its descendants (an upper bound of
    their joint peak)."""
    from tests.exporters.exporter_harness import tree_status_kib

    return tree_status_kib(pid, "VmHWM") / 1024 or float("nan")


def _page_quotas(text: str) -> dict[tuple[str, str, str, str, str], float]:
    """(family, operator, department, service, resource) -> value of yunshang_quota_limit /
    yunshang_quota_in_use."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, s.labels["operator"], s.labels["department"], s.labels["service"], s.labels["resource"]): s.value
            for fam in text_string_to_metric_families(text) if fam.name in ("yunshang_quota_limit", "yunshang_quota_in_use")
            for s in fam.samples}


def verify_quotas(clouds: str, operator: str, text: str, workers: int = 4) -> tuple[int, list[str]]:
    """Every bench project's quota limits and usage on the page against what OpenStack says now, read
    with plain openstacksdk calls (nova's and cinder's quota sets with usage, neutron's quota details).
    Returns (numbers compared, mismatches)."""
    from concurrent.futures import ThreadPoolExecutor

    from exporters.collectors import _QUOTA_UNITS      # the exporter's names and units of sized resources

    conn = connect(clouds, operator)
    page = _page_quotas(text)
    on_page = {k[2] for k in page if k[1] == operator}
    projects = [(p.name[len("dept-"):], p.id) for p in conn.identity.projects(domain_id="default", limit=1000)
                if p.name.startswith("dept-bench-")]

    def one(item) -> tuple[int, list[str]]:
        dept, pid = item
        comp = conn.compute.get(f"/os-quota-sets/{pid}/detail").json()["quota_set"]
        net = conn.network.get(f"/quotas/{pid}/details").json()["quota"]
        vol = conn.block_storage.get(f"/os-quota-sets/{pid}", params={"usage": "True"}).json()["quota_set"]
        n, bad = 0, []
        for service, qs, used_key in (("compute", comp, "in_use"), ("network", net, "used"), ("volume", vol, "in_use")):
            for r, q in qs.items():
                if not isinstance(q, dict):
                    continue
                name, mult = _QUOTA_UNITS.get((service, r), (r, 1))
                want = {"yunshang_quota_in_use": q[used_key] * mult}
                if int(q["limit"]) >= 0:
                    want["yunshang_quota_limit"] = q["limit"] * mult
                for fam, v in want.items():
                    got = page.get((fam, operator, dept, service, name))
                    if got is None:
                        continue          # a resource the exporter does not export (e.g. nova's fixed_ips)
                    n += 1
                    if got != v:
                        bad.append(f"{dept} {fam} {service}/{name}: page {got:g}, OpenStack {v:g}")
        if dept not in on_page:
            bad.append(f"{dept}: no quota numbers on the page")
        return n, bad

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, projects))
    return sum(n for n, _ in results), [b for _, bad in results for b in bad]


def run_ours(tmp, clouds, operator, catalog, scrapes, interval=15.0, gzip_=True, every=0.05, verify=True,
             floor_round: Callable[[], tuple[float, int]] | None = None):
    """Our exporter refreshing every ``interval`` seconds: 1 cold + 4 warm refreshes, each warm one
    followed at once by one ``floor_round`` (in the gap before the next refresh starts, so that both
    see the same cloud at the same load: pairs, not two phases minutes apart); then the scrapes."""
    from tests.exporters.exporter_harness import tree_cpu_seconds

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    p = start([sys.executable, "-m", "cli.main", "exporter", "serve", "--listen", f"127.0.0.1:{port}", "--catalog",
               str(catalog), "--clouds", clouds, "--operator", operator, "--interval", f"{interval:g}",
               "--probe-interval", "15", "--state-file", str(tmp / f"probes-{operator}.json")], dict(os.environ),
              tmp / f"ours-{operator}.log",
              cwd=ROOT)
    try:
        wait_for(lambda: p.poll() is None and get(url), 60, f"our exporter on :{port} (see {tmp / f'ours-{operator}.log'})")
        durations = []
        floors: list[tuple[float, int]] = []
        overlapped = 0
        last = None
        deadline = time.monotonic() + 900
        while len(durations) < 5 and time.monotonic() < deadline:
            text = get(url).decode() if p.poll() is None else ""
            ts = sample(text, "yunshang_last_refresh_timestamp_seconds")
            if ts and ts != last:
                last = ts
                durations.append(sample(text, "yunshang_collection_duration_seconds"))
                if floor_round is not None and len(durations) >= 2:
                    floors.append(floor_round())
                    if time.time() > ts + interval:      # ran into the next refresh: both slowed
                        overlapped += 1
            time.sleep(0.2)
        if len(durations) < 2:
            raise SystemExit(f"bench: our exporter refreshed {len(durations)} time(s); see {tmp / f'ours-{operator}.log'}")
        # scrapes while it keeps refreshing every `interval` seconds, over at least 3 refreshes
        floor_proc, floor_url = static_server(tmp, get(url))
        try:
            cpu0, n0 = tree_cpu_seconds(p.pid), sample(get(url).decode(), "yunshang_collections_total") or 0
            sc = scrape_latency(url, scrapes, refreshes=3, gzip_=gzip_, every=every, ref_url=floor_url,
                                min_refreshing=100)
            text = get(url).decode()
            cpu1, n1 = tree_cpu_seconds(p.pid), sample(text, "yunshang_collections_total") or 0
        finally:
            stop(floor_proc)
        checked, mismatches = verify_quotas(clouds, operator, text) if verify else (0, [])
        if verify:
            log(f"{operator}: {checked} quota numbers of the page compared with OpenStack, {len(mismatches)} differ"
                + "".join(f"\n  {m}" for m in mismatches[:20]))
        return {"refresh_s": statistics.median(durations[1:]), "cold_refresh_s": durations[0],
                "floor_s": statistics.median(f[0] for f in floors) if floors else None,
                "floor_calls": floors[0][1] if floors else None, "floor_rounds": [round(f[0], 3) for f in floors],
                "floor_overlapped": overlapped,
                "refreshes": durations, "p50_ms": sc["p50"] * 1e3, "p99_ms": sc["p99"] * 1e3,
                "p99_refreshing_ms": sc["p99_refreshing"] * 1e3, "scrapes": sc["scrapes"],
                "scrapes_refreshing": sc["scrapes_refreshing"], "refreshes_while_scraping": sc["refreshes_while_scraping"],
                "failed": sc["failed"], "cpu_s_per_refresh": (cpu1 - cpu0) / max(1, n1 - n0),
                "floor_p99_refreshing_ms": sc.get("ref_p99_refreshing", float("nan")) * 1e3,
                "floor_p99_ms": sc.get("ref_p99", float("nan")) * 1e3,
                "quota_numbers_checked": checked, "quota_mismatches": mismatches,
                "families": families(text), "bytes": len(text), "rss_mb": _rss_mb(p.pid),
                "api_calls_per_refresh": _calls_per_refresh(text, len(durations)), "per_service": _per_service(text)}
    finally:
        stop(p)


def _per_service(text: str) -> dict[str, dict[str, float]]:
    """Per OpenStack service: API calls and the seconds they took, per refresh (cold one included),
    from the exporter's own self-metrics."""
    runs = sample(text, "yunshang_collections_total") or 1
    out: dict[str, dict[str, float]] = {}
    for ln in text.splitlines():
        for stem, key in (("yunshang_openstack_api_call_duration_seconds_sum{", "seconds"),
                          ("yunshang_openstack_api_call_duration_seconds_count{", "calls")):
            if ln.startswith(stem):
                svc = ln.split('service="', 1)[1].split('"', 1)[0]
                out.setdefault(svc, {})[key] = round(float(ln.rsplit(" ", 1)[1]) / runs, 3)
    return out


def _calls_per_refresh(text: str, refreshes: int) -> float:
    total = sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                if ln.startswith("yunshang_openstack_api_calls_total{"))
    runs = sample(text, "yunshang_collections_total") or refreshes
    return total / max(1.0, runs)


def floor_probe(clouds: str, operator: str) -> Callable[[], tuple[float, int]]:
    """One round of the floor per call: (wall seconds, calls) of the fewest API calls returning what a
    refresh reads every time, made with plain openstacksdk sessions, answers discarded."""
    from concurrent.futures import ThreadPoolExecutor

    conn = connect(clouds, operator)
    conn.authorize()

    def paged(adapter, path, key, mv=None, **params):
        out, marker = [], None
        while True:
            q = dict(params, limit=1000, **({"marker": marker} if marker else {}))
            items = adapter.get(path, params=q, **({"microversion": mv} if mv else {})).json()[key]
            out.extend(items)
            if len(items) < 1000:
                return out
            marker = items[-1]["id"]

    def one_round() -> tuple[float, int]:
        t0 = time.perf_counter()
        calls = [0]

        def get_json(adapter, path, **params):
            calls[0] += 1
            return adapter.get(path, params=params or None).json()

        def capacity():
            get_json(conn.compute, "/os-aggregates")
            get_json(conn.compute, "/os-hypervisors/detail")
            rps = get_json(conn.placement, "/resource_providers")["resource_providers"]
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda rp: (get_json(conn.placement, f"/resource_providers/{rp['uuid']}/inventories"),
                                          get_json(conn.placement, f"/resource_providers/{rp['uuid']}/usages")), rps))

        def compute():
            # the instances' vcpus/RAM from nova's usage report, the never-launched ones from the list
            marker = None
            while True:
                now = time.time()
                fmt = "%Y-%m-%dT%H:%M:%S"
                q = {"start": time.strftime(fmt, time.gmtime(now - 60)), "end": time.strftime(fmt, time.gmtime(now + 60)),
                     "detailed": "1", "limit": 1000, **({"marker": marker} if marker else {})}
                page = conn.compute.get("/os-simple-tenant-usage", params=q, microversion="2.40").json()
                calls[0] += 1
                nxt = [ln["href"] for ln in page.get("tenant_usages_links") or [] if ln.get("rel") == "next"]
                if not nxt or not page.get("tenant_usages"):
                    break
                marker = nxt[0].split("marker=")[1].split("&")[0]
            for status in ("BUILD", "ERROR"):
                servers = paged(conn.compute, "/servers/detail", "servers", "2.47", all_tenants="1", status=status)
                calls[0] += 1 + len(servers) // 1000
            get_json(conn.compute, "/os-server-groups", all_projects="True", limit=1000)

        def network():
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda c: get_json(conn.network, f"/{c}", fields="project_id"),
                              ("networks", "subnets", "ports", "routers", "floatingips", "security-groups",
                               "security-group-rules")))

        def volume():
            for path, key, mv in (("/volumes/detail", "volumes", None), ("/snapshots/detail", "snapshots", None),
                                  ("/backups/detail", "backups", "3.18")):
                items = paged(conn.block_storage, path, key, mv, all_tenants="1")
                calls[0] += 1 + len(items) // 1000

        def projects():
            # every project, page by page (Keystone cuts an unpaginated list at 1,000 without saying so)
            params: dict = {"limit": 1000}
            while True:
                body = get_json(conn.identity, "/projects", **params)
                nxt = (body.get("links") or {}).get("next")
                if not nxt or not body["projects"]:
                    return
                params = {"limit": 1000, "marker": nxt.split("marker=")[1].split("&")[0]}

        with ThreadPoolExecutor(max_workers=5) as pool:
            futs = [pool.submit(f) for f in (capacity, compute, network, volume,
                                             projects)]
            for f in futs:
                f.result()
        return time.perf_counter() - t0, calls[0]

    return one_round


def run_peer(tmp, clouds, operator, scrapes, every=0.05):
    exe = shutil.which("prometheus-openstack-exporter")
    if exe is None:
        return None
    from yunshang.yamlload import load_yaml

    doc = load_yaml(clouds)["clouds"][operator]
    auth = doc["auth"]
    env = dict(os.environ, OS_AUTH_URL=auth["auth_url"], OS_USERNAME=auth["username"], OS_PASSWORD=auth["password"],
               OS_PROJECT_NAME=auth["project_name"], OS_TENANT_NAME=auth["project_name"],
               OS_USER_DOMAIN_NAME=auth.get("user_domain_name", "Default"),
               OS_PROJECT_DOMAIN_NAME=auth.get("project_domain_name", "Default"), OS_IDENTITY_API_VERSION="3",
               OS_REGION_NAME=doc.get("region_name", "RegionOne"), PYTHONPATH=str(tmp / "shim"))
    (tmp / "shim").mkdir(exist_ok=True)
    (tmp / "shim" / "sitecustomize.py").write_text(SHIM)
    port = free_port()
    cfg = {"listen_port": port, "cache_refresh_interval": 5, "cache_file": str(tmp / "peer-cache"), "cloud": operator,
           "openstack_allocation_ratio_vcpu": 4.0, "openstack_allocation_ratio_ram": 1.0,
           "openstack_allocation_ratio_disk": 1.0, "log_level": "INFO",
           "enabled_collectors": ["cinder", "neutron", "nova"],
           "schedulable_instance_size": {"ram_mbs": 4096, "vcpu": 2, "disk_gbs": 20}}
    (tmp / "peer.yaml").write_text(yaml.safe_dump(cfg))
    # Its HTTP handler is Python 2 code (str + bytes): run a temp copy with those two lines made Python 3.
    src = pathlib.Path(exe).read_text()
    patched = src.replace("output = ''", "output = b''").replace(
        "self.wfile.write(traceback.format_exc())", "self.wfile.write(traceback.format_exc().encode())")
    assert patched != src, "prometheus-openstack-exporter changed: review the bench's Python 3 patch"
    (tmp / "peer-exporter.py").write_text(patched)
    p = start(["/usr/bin/python3", str(tmp / "peer-exporter.py"), str(tmp / "peer.yaml")], env, tmp / "peer.log", cwd=tmp)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        t0 = time.monotonic()
        ok = False
        while time.monotonic() - t0 < 900 and p.poll() is None:
            if (tmp / "peer-cache").exists():
                ok = True
                break
            time.sleep(0.5)
        if not ok:
            tail = (tmp / "peer.log").read_text(errors="replace")[-1500:]
            return {"error": f"peer produced no cache (see {tmp / 'peer.log'}): ...{tail[-600:]}"}
        text = wait_for(lambda: get(url).decode(), 60, "peer /metrics")
        refresh = sample(text, "openstack_exporter_cache_refresh_duration_seconds")
        sc = scrape_latency(url, scrapes, every=every)
        return {"refresh_s": refresh, "p50_ms": sc["p50"] * 1e3, "p99_ms": sc["p99"] * 1e3, "failed": sc["failed"],
                "families": families(text), "bytes": len(text)}
    finally:
        stop(p)


# what each peer family means, and the yunshang family covering it
PEER_TO_OURS = {
    "hypervisor_vcpus_total": "yunshang_zone_vcpus", "hypervisor_vcpus_used": "yunshang_zone_vcpus_allocated",
    "hypervisor_memory_mbs_total": "yunshang_zone_memory_bytes",
    "hypervisor_memory_mbs_used": "yunshang_zone_memory_allocated_bytes",
    "hypervisor_disk_gbs_total": "yunshang_zone_disk_bytes", "hypervisor_disk_gbs_used": "yunshang_zone_disk_allocated_bytes",
    "hypervisor_running_vms": "yunshang_zone_instances", "hypervisor_schedulable_instances": "yunshang_zone_vcpus_free",
    "hypervisor_schedulable_instances_capacity": "yunshang_zone_vcpus_headroom",
    "nova_instances": "yunshang_zone_instances", "nova_resources_ram_mbs": "yunshang_quota_in_use",
    "nova_resources_vcpus": "yunshang_quota_in_use", "nova_resources_disk_gbs": "yunshang_zone_disk_allocated_bytes",
    "neutron_public_ip_usage": "yunshang_quota_in_use", "neutron_net_size": "yunshang_quota_limit",
    "neutron_ports": "yunshang_quota_in_use", "neutron_routers": "yunshang_quota_in_use",
    "neutron_floating_ips": "yunshang_quota_in_use", "neutron_ip_address_usage": "yunshang_quota_in_use",
    "cinder_volumes": "yunshang_quota_in_use", "cinder_volume_size_gbs": "yunshang_quota_in_use",
    "openstack_exporter_cache_age_seconds": "yunshang_last_refresh_timestamp_seconds",
    "nova_quota_cores": "yunshang_quota_limit", "nova_quota_instances": "yunshang_quota_limit",
    "nova_quota_ram_mbs": "yunshang_quota_limit", "nova_quota_floating_ips": "yunshang_quota_limit",
    "cinder_quota_volume_disks": "yunshang_quota_limit", "cinder_quota_volume_disk_gigabytes": "yunshang_quota_limit",
    "openstack_allocation_ratio": "yunshang_zone_vcpu_allocation_ratio",
    "openstack_exporter_cache_refresh_duration_seconds": "yunshang_collection_duration_seconds",
}


def measure(a, clouds: str, tmp: pathlib.Path, operator: str, projects: int, servers: int, peer: bool) -> dict:
    """Grow (unless --skip-grow) and measure one operator: ours, the floor, and the peer if asked."""
    if a.skip_grow:
        conn = connect(clouds, operator)
        n_proj = sum(1 for p in conn.identity.projects(limit=1000) if p.name.startswith("dept-bench-"))
        n_srv = _count(conn, "ACTIVE")
        grow_s = 0.0
    else:
        n_proj, n_srv, grow_s = grow(clouds, operator, projects, servers, a.grow_timeout)
    log(f"cloud {operator}: {n_proj} bench projects, {n_srv} ACTIVE bench servers (grow {grow_s:.0f}s)")
    catalog = bench_catalog(tmp / f"catalog-{operator}", operator, n_proj)
    log(f"{operator}: measuring yunshang exporter")
    ours = run_ours(tmp, clouds, operator, catalog, a.scrapes, interval=a.interval, gzip_=not a.plain,
                    every=a.scrape_every, verify=not a.no_verify, floor_round=floor_probe(clouds, operator))
    floor_s, floor_calls = ours["floor_s"], ours["floor_calls"]
    peer_r = None
    if peer:
        log(f"{operator}: measuring prometheus-openstack-exporter")
        peer_r = run_peer(tmp, clouds, operator, a.scrapes, every=a.scrape_every)
    return {"operator": operator, "projects": n_proj, "servers": n_srv, "goal": [projects, servers], "ours": ours,
            "floor_seconds": floor_s, "floor_calls": floor_calls, "peer": peer_r, "load": os.getloadavg()[0]}


def report(a, r: dict) -> None:
    ours, peer, floor_s, floor_calls = r["ours"], r["peer"], r["floor_seconds"], r["floor_calls"]
    print(f"\nexporter benchmark — operator {r['operator']}: {r['projects']} projects, {r['servers']} servers reached "
          f"(goal {r['goal'][0]}/{r['goal'][1]}); scrapes sequential on loopback, "
          f"{'plain text' if a.plain else 'gzip as Prometheus asks'}, one every {a.scrape_every:g} s at most; "
          f"load average {r['load']:.1f} at the end\n")
    print("| measure | yunshang | prometheus-openstack-exporter | peer / yunshang |")
    print("|---|---|---|---|")
    if peer and "error" not in peer:
        for key, label in (("refresh_s", "full refresh (s)"), ("p50_ms", "scrape p50 (ms)"), ("p99_ms", "scrape p99 (ms)")):
            o, pv = ours[key], peer[key]
            ratio = f"{pv / o:.2f}x" if o and pv is not None else "n/a"
            print(f"| {label} | {o:.3f} | {pv if pv is None else f'{pv:.3f}'} | {ratio} |")
        print(f"| failed scrapes (of {a.scrapes}) | {ours['failed']} | {peer['failed']} | |")
        print(f"| metric families | {len(ours['families'])} | {len(peer['families'])} | |")
        print(f"| page size (bytes) | {ours['bytes']} | {peer['bytes']} | |")
        missing = [f for f in peer["families"] if PEER_TO_OURS.get(f) not in ours["families"]]
        print(f"\npeer families: {', '.join(peer['families'])}")
        print(f"peer families without a yunshang counterpart: {', '.join(missing) or 'none'}")
    else:
        print(f"| full refresh (s) | {ours['refresh_s']:.3f} | n/a | |")
        print(f"| scrape p50 (ms) | {ours['p50_ms']:.3f} | n/a | |")
        print(f"| scrape p99 (ms) | {ours['p99_ms']:.3f} | n/a | |")
        print(f"| failed scrapes (of {ours['scrapes']}) | {ours['failed']} | n/a | |")
        print(f"| page size (bytes) | {ours['bytes']} | n/a | |")
        print(f"\npeer not measured: {peer['error'] if peer else 'not asked (--peer) or not installed'}")
    print(f"\nyunshang refresh: cold {ours['cold_refresh_s']:.3f} s (every project's quota limits), warm "
          f"{ours['refresh_s']:.3f} s (median of {len(ours['refreshes']) - 1}); "
          f"{ours['api_calls_per_refresh']:.0f} API calls per refresh on average")
    print(f"floor: {floor_s:.3f} s for {floor_calls} calls (median of {len(ours['floor_rounds'])} rounds, one right "
          f"after each warm refresh: {ours['floor_rounds']}; {ours['floor_overlapped']} ran into the next refresh) "
          f"-> ours / floor = {ours['refresh_s'] / floor_s:.2f}x (warm refreshes: "
          f"{[round(d, 3) for d in ours['refreshes'][1:]]})")
    print("yunshang API calls per refresh (average, the cold one included): " + ", ".join(
        f"{svc} {v.get('calls', 0):.0f} calls / {v.get('seconds', 0):.2f} s" for svc, v in sorted(ours["per_service"].items())))
    print(f"yunshang scrapes: {ours['scrapes']} sequential, {ours['scrapes_refreshing']} of them while one of "
          f"{ours['refreshes_while_scraping']} refreshes was in flight: p99 {ours['p99_refreshing_ms']:.2f} ms "
          f"(all: p50 {ours['p50_ms']:.2f}, p99 {ours['p99_ms']:.2f} ms)")
    print(f"scrape floor (the same page from a process doing nothing else, scraped right after each of ours, "
          f"same windows): p99 {ours['floor_p99_refreshing_ms']:.2f} ms while refreshing (all: "
          f"{ours['floor_p99_ms']:.2f} ms) -> ours / floor = "
          f"{ours['p99_refreshing_ms'] / ours['floor_p99_refreshing_ms']:.2f}x")
    if ours["quota_numbers_checked"] or ours["quota_mismatches"]:
        print(f"equality: {ours['quota_numbers_checked']} quota numbers of {r['projects']} bench projects on the page "
              f"compared with OpenStack's quota sets: {len(ours['quota_mismatches'])} differ")
    print(f"exporter peak RSS (server + collector process): {ours['rss_mb']:.0f} MB; its CPU while scraped: "
          f"{ours['cpu_s_per_refresh']:.2f} s a refresh (server + collector; scrapes included)")
    print(f"\nyunshang families ({len(ours['families'])}): {', '.join(ours['families'])}")


def summary(r: dict) -> dict:
    """The issue's one-line figures of one measured operator."""
    ours, peer = r["ours"], r["peer"]
    return {"servers": r["servers"], "projects": r["projects"], "refresh_seconds": round(ours["refresh_s"], 3),
            "floor_seconds": round(r["floor_seconds"], 3),
            "peer_refresh_seconds": peer.get("refresh_s") if peer and "error" not in peer else None,
            "scrape_p99_ms": round(ours["p99_refreshing_ms"], 2), "rss_mb": round(ours["rss_mb"], 1),
            "scrape_p99_all_ms": round(ours["p99_ms"], 2),
            "scrape_floor_p99_ms": round(ours["floor_p99_refreshing_ms"], 2)}


def growth(base: dict, big: dict, label: str) -> float:
    """Print and return refresh growth / server growth from base to big (<= 1: no worse than linear)."""
    xs, xr = big["servers"] / base["servers"], big["refresh_seconds"] / base["refresh_seconds"]
    xf = big["floor_seconds"] / base["floor_seconds"]
    g = round(xr / xs, 3)
    print(f"\ngrowth from {base['servers']} servers / {base['projects']} projects ({label}): servers x{xs:.2f}, "
          f"projects x{big['projects'] / base['projects']:.2f}; refresh x{xr:.2f} ({base['refresh_seconds']:.3f} -> "
          f"{big['refresh_seconds']:.3f} s), floor x{xf:.2f} ({base['floor_seconds']:.3f} -> {big['floor_seconds']:.3f} s); "
          f"refresh growth / server growth = {g:.2f} ({'no worse than linear' if g <= 1.0 else 'worse than linear'})")
    return g


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clouds")
    ap.add_argument("--operator", default="telecom")
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--baseline", metavar="OPERATOR:PROJECTS:SERVERS",
                    help="a second operator of the same devcloud, smaller (e.g. unicom:200:1000): grown likewise and "
                         "measured in the same run, right before --operator; prints how refresh cost grew per server. "
                         "--peer then runs on the baseline only")
    ap.add_argument("--grow-timeout", type=float, default=900)
    ap.add_argument("--scrapes", type=int, default=500)
    ap.add_argument("--interval", type=float, default=15.0, metavar="SECONDS",
                    help="our exporter's refresh interval in the bench (default 15: room after each warm refresh "
                         "for one floor round before the next refresh starts)")
    ap.add_argument("--plain", action="store_true", help="scrape plain text (default: gzip, as Prometheus asks)")
    ap.add_argument("--scrape-every", type=float, default=0.05, metavar="SECONDS",
                    help="start a scrape at most every SECONDS (default 0.05: 20 a second, far more than any Prometheus; "
                         "0 = back to back, where the client itself takes one of the two cores)")
    ap.add_argument("--no-verify", action="store_true",
                    help="do not compare every bench project's quota limits and usage on the page with OpenStack "
                         "(default: compared, 3 calls a project; a difference makes the run exit 1)")
    ap.add_argument("--skip-grow", action="store_true", help="measure what the cloud holds now")
    ap.add_argument("--cleanup-only", action="store_true", help="only delete the bench servers and projects")
    ap.add_argument("--grow-only", action="store_true", help="only grow the cloud (kept), measure nothing")
    ap.add_argument("--keep", action="store_true", help="keep the bench servers and projects (default: delete them)")
    ap.add_argument("--json", action="store_true", help="print the whole result as indented JSON too")
    ap.add_argument("--peer", action="store_true", help="also measure prometheus-openstack-exporter (Debian package)")
    ap.add_argument("--compare", metavar="FILE",
                    help="a smaller run's final JSON line (e.g. 1,000 servers): print how refresh cost grew per server")
    a = ap.parse_args()
    clouds = find_clouds(a.clouds)
    base_spec = None
    if a.baseline:
        parts = a.baseline.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or parts[0] == a.operator:
            ap.error("--baseline: expected OPERATOR:PROJECTS:SERVERS with an operator other than --operator, "
                     "e.g. unicom:200:1000")
        base_spec = (parts[0], int(parts[1]), int(parts[2]))
    targets = ([base_spec] if base_spec else []) + [(a.operator, a.projects, a.servers)]
    if a.cleanup_only:
        for op, _, _ in targets:
            ns, np_ = cleanup(clouds, op, a.grow_timeout)
            log(f"{op}: deleted {ns} servers, {np_} projects")
        return 0
    if a.grow_only:
        for op, n_p, n_s in targets:
            n_proj, n_srv, grow_s = grow(clouds, op, n_p, n_s, a.grow_timeout)
            log(f"cloud {op}: {n_proj} bench projects, {n_srv} ACTIVE bench servers (grow {grow_s:.0f}s)")
        return 0
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="yunshang-bench-exporter-"))
    results = [measure(a, clouds, tmp, op, n_p, n_s, peer=a.peer and (op != a.operator or not base_spec))
               for op, n_p, n_s in targets]
    for r in results:
        report(a, r)
    line = summary(results[-1])
    g = None
    if base_spec:
        base = summary(results[0])
        g = growth(base, line, f"{base_spec[0]}, same run")
        line["peer_refresh_seconds"] = base["peer_refresh_seconds"]
        line["baseline"] = base
    elif a.compare:
        g = growth(json.loads(pathlib.Path(a.compare).read_text().strip().splitlines()[-1]), line, a.compare)
    line["refresh_growth_per_server_growth"] = g
    if a.json:
        print(json.dumps(results, indent=2))
    if not a.keep and not a.skip_grow:
        for op, _, _ in targets:
            log(f"{op}: deleting bench servers and projects (--keep to keep them)")
            ns, np_ = cleanup(clouds, op, a.grow_timeout)
            log(f"{op}: deleted {ns} servers, {np_} projects")
    line["quota_numbers_checked"] = sum(r["ours"]["quota_numbers_checked"] for r in results)
    line["quota_mismatches"] = sum(len(r["ours"]["quota_mismatches"]) for r in results)
    print(json.dumps(line))
    return 1 if line["quota_mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
