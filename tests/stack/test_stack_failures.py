"""What goes wrong in production, run for real (devcloud, the Pulumi engine `make pulumi` built):

* an `up` SIGKILLed (its whole process group) while servers are being created: the next `up`
  converges, a second one changes nothing, openstacksdk finds exactly one of each named resource
  and nothing of the tenant outside the state, `destroy` leaves nothing;
* a `postgres://` backend shared by two workspaces (two state dirs, as two engineers have): B
  sees A's stack (0 changes, A's outputs), an `up` of one while the other's runs is refused;
* stale locks left by killed processes (yunshang's own and Pulumi's, on file:// and postgres://)
  are taken over, said so; a lock whose holder is alive is never overridden.

Departments of this file only (prefix `ypk-`, own catalog built in tmp from tests/stack's
providers and templates): `ypk-kill` on telecom (2 web servers, each with a floating IP and a
volume), `ypk-share` on unicom (one database server). Leftovers of an earlier killed run of this
file (anything named `ypk-...`) are removed first.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.stack.conftest import CATALOG, DAY, PASSPHRASE, YUNSHANG, conn, leftovers, run_cli, save_plan, store_url

KILL, KILL_OP = "ypk-kill", "telecom"
SHARE, SHARE_OP = "ypk-share", "unicom"
PG_PASSWORD = "ypk-pg-Secret-7f3a"  # trust auth ignores it; it must still never be printed

DEPARTMENTS = {
    KILL: {"name": KILL, "display_name": "故障测试网站局", "mlps_level": 3,
           "contracts": [{"id": "YPKK-2026-01", "provider": KILL_OP, "role": "primary", "start": "2026-01-01",
                          "end": "2028-12-31", "ceiling_cny_per_month": 100000}],
           "requests": [{"name": "web", "template": "ypl-web", "size": "tiny", "count": 2, "ha": True}],
           "users": [{"name": "admin", "role": "admin", "email": "ypk-kill-admin@gov.example.cn"}]},
    SHARE: {"name": SHARE, "display_name": "故障测试共享局", "mlps_level": 2,
            "contracts": [{"id": "YPKS-2026-01", "provider": SHARE_OP, "role": "primary", "start": "2026-01-01",
                           "end": "2028-12-31", "ceiling_cny_per_month": 100000}],
            "requests": [{"name": "db", "template": "ypl-db", "size": "tiny", "count": 1}],
            "users": [{"name": "ops", "role": "member", "email": "ypk-share-ops@gov.example.cn"}]},
}


@pytest.fixture
def catalog(tmp_path) -> Path:
    """This file's own catalog: tests/stack's providers and templates, the ypk- departments."""
    dst = tmp_path / "catalog"
    (dst / "departments").mkdir(parents=True)
    shutil.copy(CATALOG / "providers.yaml", dst / "providers.yaml")
    shutil.copytree(CATALOG / "templates", dst / "templates")
    for name, doc in DEPARTMENTS.items():
        (dst / "departments" / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return dst


def purge(cloud: str, clouds_file: str, department: str) -> None:
    """Delete what an earlier, killed run of this file left of ``department`` (ypk- names only)."""
    assert department.startswith("ypk-")
    c = conn(cloud, clouds_file)
    pname = f"dept-{department}"
    project = c.identity.find_project(pname)
    pid = project.id if project else None
    for f in c.network.ips():
        if (f.description or "").startswith(f"yunshang-managed {department}") or (pid and f.project_id == pid):
            c.network.delete_ip(f, ignore_missing=True)
    servers = [s for s in c.compute.servers(all_projects=True) if s.name.startswith(department)]
    for s in servers:
        c.compute.delete_server(s, ignore_missing=True)
    for s in servers:
        c.compute.wait_for_delete(s, wait=300)
    for v in c.block_storage.volumes(all_projects=True):
        if (v.name or "").startswith(department):
            c.block_storage.wait_for_status(v, "available", failures=["error"], wait=120) if v.status != "available" \
                else None
            c.block_storage.delete_volume(v, ignore_missing=True)
    for r in [r for r in c.network.routers() if (r.name or "").startswith(pname)]:
        for p in c.network.ports(device_id=r.id):
            if (p.device_owner or "").startswith("network:router_interface"):
                for ip in p.fixed_ips:
                    c.network.remove_interface_from_router(r, subnet_id=ip["subnet_id"])
        c.network.delete_router(r, ignore_missing=True)
    for p in c.network.ports():
        if (p.name or "").startswith((pname, department)) or (pid and p.project_id == pid and
                                                               not (p.device_owner or "").startswith("network:dhcp")):
            c.network.delete_port(p, ignore_missing=True)
    for n in [n for n in c.network.networks() if (n.name or "").startswith(pname)]:
        c.network.delete_network(n, ignore_missing=True)
    for g in c.network.security_groups():
        if (g.name or "").startswith(pname):
            c.network.delete_security_group(g, ignore_missing=True)
    for g in c.compute.server_groups(all_projects=True):
        if (g.name or "").startswith((pname, department)):
            c.compute.delete_server_group(g, ignore_missing=True)
    for f in c.compute.flavors(is_public=None):
        if f.name.startswith(pname):
            c.compute.delete_flavor(f, ignore_missing=True)
    for u in c.identity.users():
        if u.name.startswith(f"{department}."):
            c.identity.delete_user(u, ignore_missing=True)
    if project:
        c.identity.delete_project(project, ignore_missing=True)
    assert leftovers(cloud, clouds_file, department) == [], f"could not purge {department}"


@pytest.fixture
def clean(clouds):
    for dept, op in ((KILL, KILL_OP), (SHARE, SHARE_OP)):
        if leftovers(op, clouds, dept):
            purge(op, clouds, dept)


def _args(verb: str, dept: str, op: str, catalog: Path, clouds: str, *extra: str) -> list[str]:
    return ["stack", verb, dept, "--catalog", str(catalog), "--date", DAY.isoformat(), "--clouds", clouds,
            "--operator", op, *extra]


def _env(state: Path, db: Path | None = None, **extra: str) -> dict:
    e = {**os.environ, "YUNSHANG_STATE_DIR": str(state), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
         "YUNSHANG_DB": store_url(db or state), **extra}
    e.pop("OS_CLOUD", None)
    return e


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    """`yunshang ...` in a process group of its own (so the whole group can be SIGKILLed)."""
    return subprocess.Popen([YUNSHANG, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _kill_group(p: subprocess.Popen) -> str:
    os.killpg(p.pid, signal.SIGKILL)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    return out or ""


def _wait(cond, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _json(r: subprocess.CompletedProcess):
    return json.loads(r.stdout)[0]


def _export(state: Path, dept: str, op: str, catalog: Path, clouds: str, env: dict | None = None) -> dict:
    return json.loads(run_cli(state, "stack", "export", dept, "--operator", op, "--catalog", str(catalog),
                              "--date", DAY.isoformat(), "--clouds", clouds, env=env).stdout)


def _verify(state: Path, dept: str, op: str, catalog: Path, clouds: str, env: dict | None = None) -> None:
    v = run_cli(state, "tenant", "verify", dept, "--operator", op, "--catalog", str(catalog), "--date",
                DAY.isoformat(), "--clouds", clouds, check=False, env=env)
    assert v.returncode == 0 and "no drift" in v.stdout, v.stdout + v.stderr


def _fake_process(name: str) -> subprocess.Popen:
    """A live process whose command line starts with ``name`` (a lock holder that is alive)."""
    return subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 600"])


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _one_of_each_and_no_orphans(c, dept: str, deployment: dict, volumes_per_server: int) -> dict:
    """openstacksdk: every named resource of the tenant exists exactly once, and every object of the
    tenant's project (servers, volumes, floating IPs, ports but DHCP's and the router gateway's) is
    one the state holds."""
    project = c.identity.find_project(f"dept-{dept}")
    pid = project.id
    ids = {r.get("id") for r in deployment["resources"] if r.get("id")}
    servers = list(c.compute.servers(all_projects=True, project_id=pid))
    volumes = list(c.block_storage.volumes(all_projects=True, project_id=pid))
    fips = list(c.network.ips(project_id=pid))
    ports = [p for p in c.network.ports(project_id=pid)
             if not (p.device_owner or "").startswith(("network:dhcp", "network:router_gateway"))]
    router = [r for r in c.network.routers(project_id=pid)]
    rifs = [p for p in ports if (p.device_owner or "").startswith("network:router_interface")]
    counts = {"servers": [s.name for s in servers], "volumes": [v.name for v in volumes],
              "floating_ips": [f.description for f in fips], "ports": sorted(p.name or p.device_owner for p in ports),
              "routers": [r.name for r in router], "router_interfaces": [p.id for p in rifs],
              "networks": [n.name for n in c.network.networks(project_id=pid)],
              "security_groups": [g.name for g in c.network.security_groups(project_id=pid) if g.name != "default"],
              "server_groups": [g.name for g in c.compute.server_groups(all_projects=True) if g.project_id == pid]}
    for kind, names in counts.items():
        assert len(names) == len(set(names)), f"duplicate {kind}: {sorted(names)}"
    assert len(rifs) == 1 and len(router) == 1, counts
    for s in servers:
        attached = [a.volume_id for a in c.compute.volume_attachments(s)]
        assert len(attached) == len(set(attached)) == volumes_per_server, (s.name, attached)
    for kind, objs in (("server", servers), ("volume", volumes), ("floating_ip", fips), ("port", ports)):
        orphans = [(o.name or o.id) for o in objs if o.id not in ids]
        assert orphans == [], f"{kind}s of dept-{dept} outside the state: {orphans}"
    return counts


# --------------------------------------------------------------------------------------------------
def test_killed_up_converges_without_duplicates_or_orphans(clouds, catalog, tmp_path, clean):
    state = tmp_path / "state"
    c = conn(KILL_OP, clouds)
    timings: dict[str, float] = {}
    transcript: list[str] = []
    try:
        save_plan(state, catalog, clouds)
        # ---- up, SIGKILLed (the whole process group: yunshang, the engine, the provider, the
        # language host) as soon as the first server exists in the cloud: creates are in flight
        t0 = time.monotonic()
        p = _spawn(_args("up", KILL, KILL_OP, catalog, clouds), _env(state))
        def first_server():
            if p.poll() is not None:
                raise AssertionError(f"the up ended before any server existed: {p.communicate()[0]}")
            return [s.name for s in c.compute.servers(all_projects=True) if s.name.startswith(f"{KILL}-web-")]
        first = _wait(first_server, 900, "the first server of the killed up")
        out = _kill_group(p)
        timings["until_kill_s"] = time.monotonic() - t0
        transcript.append(out)
        assert "up succeeded" not in out
        killed_state = _export(state, KILL, KILL_OP, catalog, clouds)
        pending = [op["resource"]["urn"].rsplit("::", 1)[-1] for op in killed_state.get("pending_operations") or []]
        print(f"killed after the first server ({first}) at {timings['until_kill_s']:.1f} s; pending: {pending}")
        assert pending, "the kill left no pending operation: it did not land while creates were in flight"
        engine_locks = list((state / "pulumi" / "backend" / ".pulumi" / "locks").rglob("*.json"))
        assert engine_locks, "the killed engine's own lock should still be there"

        # ---- the next up repairs: stale locks taken over (said so), pending creates resolved
        t0 = time.monotonic()
        r = run_cli(state, *_args("up", KILL, KILL_OP, catalog, clouds), timeout=1200, check=False)
        timings["recovering_up_s"] = time.monotonic() - t0
        transcript.append(r.stdout + r.stderr)
        assert r.returncode == 0 and f"{KILL}.{KILL_OP}: up succeeded" in r.stdout, r.stdout + r.stderr
        assert f"note: stack {KILL}.{KILL_OP}: took over the lock left by yunshang pid {p.pid} on " in r.stderr, \
            r.stderr
        assert "note: removed Pulumi's lock left by" in r.stderr and "(that process is gone)" in r.stderr, r.stderr
        for name in pending:
            assert f"interrupted create of {name} " in r.stderr, (name, r.stderr)
        assert not list((state / "pulumi" / "backend" / ".pulumi" / "locks").rglob("*.json"))

        # ---- converged: a second up changes nothing; one of each; nothing outside the state
        t0 = time.monotonic()
        again = _json(run_cli(state, *_args("up", KILL, KILL_OP, catalog, clouds, "--output", "json"), timeout=1200))
        timings["second_up_s"] = time.monotonic() - t0
        assert again["result"] == "succeeded" and set(again["changes"]) == {"same"}, again["changes"]
        assert again["steps"] == [] and again["recovered"] == []
        deployment = _export(state, KILL, KILL_OP, catalog, clouds)
        assert not deployment.get("pending_operations")
        counts = _one_of_each_and_no_orphans(c, KILL, deployment, 1)
        assert sorted(counts["servers"]) == [f"{KILL}-web-01", f"{KILL}-web-02"], counts
        assert sorted(counts["volumes"]) == [f"{KILL}-web-01-data", f"{KILL}-web-02-data"], counts
        assert len(counts["floating_ips"]) == 2, counts
        _verify(state, KILL, KILL_OP, catalog, clouds)

        # ---- Pulumi's lock held by a live engine is never overridden; a dead one is removed
        lockdir = state / "pulumi" / "backend" / ".pulumi" / "locks" / "organization" / "yunshang" / f"{KILL}.{KILL_OP}"
        lockdir.mkdir(parents=True, exist_ok=True)
        holder = _fake_process("pulumi-engine-ypk")
        try:
            fake = lockdir / "ypk-fake.json"
            fake.write_text(json.dumps({"pid": holder.pid, "username": "ypk", "hostname": socket.gethostname(),
                                        "timestamp": "2026-12-01T12:00:00Z"}))
            busy = run_cli(state, *_args("preview", KILL, KILL_OP, catalog, clouds), check=False)
            assert busy.returncode == 4, busy.stdout + busy.stderr
            assert f"the engine of an interrupted run (ypk@{socket.gethostname()} pid {holder.pid}" in busy.stderr
            assert fake.exists()
        finally:
            holder.kill()
            holder.wait()
        r = run_cli(state, *_args("preview", KILL, KILL_OP, catalog, clouds))
        assert f"removed Pulumi's lock left by ypk@{socket.gethostname()} pid {holder.pid}" in r.stderr, r.stderr
        assert not fake.exists()
        print("timings:", {k: round(v, 1) for k, v in timings.items()}, "pending after the kill:", len(pending))
    finally:
        d = run_cli(state, *_args("destroy", KILL, KILL_OP, catalog, clouds, "--yes"), check=False, timeout=1200)
    assert d.returncode == 0, d.stdout + d.stderr
    assert leftovers(KILL_OP, clouds, KILL) == []


# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_backend():
    """A real PostgreSQL (a throw-away cluster, as tests/lifecycle and tests/api start) with a
    database for the Pulumi state; the URL carries a password that must never be printed."""
    import psycopg

    from tests.lifecycle.pgcluster import PostgresMissing, throwaway_cluster

    try:
        with throwaway_cluster("fsync=off", "max_connections=60") as url:
            with psycopg.connect(url, autocommit=True) as c:
                c.execute('CREATE DATABASE "ypk_stacks"')
            yield url.replace("postgresql://yunshang@", f"postgres://yunshang:{PG_PASSWORD}@").rsplit("/", 1)[0] \
                + "/ypk_stacks?sslmode=disable"  # the test cluster has no TLS; Pulumi's driver (lib/pq) requires it by default
    except PostgresMissing as exc:
        pytest.fail(str(exc))


def _pg(url: str):
    import psycopg

    from stacks.automation import pg_dsn

    return psycopg.connect(pg_dsn(url)[0], autocommit=True)


def test_postgres_backend_shared_by_two_workspaces(clouds, catalog, tmp_path, clean, pg_backend):
    from stacks.automation import _lock_key

    stack = f"{SHARE}.{SHARE_OP}"
    a, b = tmp_path / "a", tmp_path / "b"       # two engineers' state dirs (workspaces, PULUMI_HOME)
    store = a                                    # ... one lifecycle store (the center's)
    ea, eb = _env(a, store, YUNSHANG_PULUMI_BACKEND=pg_backend), _env(b, store, YUNSHANG_PULUMI_BACKEND=pg_backend)
    transcript: list[str] = []

    def cli(env, *args, check=True, timeout=1200):
        r = run_cli(Path(env["YUNSHANG_STATE_DIR"]), *args, env=env, check=check, timeout=timeout)
        transcript.append(r.stdout + r.stderr)
        return r

    try:
        save_plan(store, catalog, clouds)
        # ---- A builds; B, on the same backend, sees A's stack: 0 changes, A's outputs
        ra = _json(cli(ea, *_args("up", SHARE, SHARE_OP, catalog, clouds, "--output", "json")))
        assert ra["result"] == "succeeded" and ra["changes"].get("create", 0) > 10, ra["changes"]
        assert PG_PASSWORD not in ra["backend"] and ra["backend"].endswith("@" + pg_backend.rsplit("@", 1)[1])
        pb = _json(cli(eb, *_args("preview", SHARE, SHARE_OP, catalog, clouds, "--output", "json")))
        assert set(pb["changes"]) == {"same"} and pb["steps"] == [], pb
        xb = _export(b, SHARE, SHARE_OP, catalog, clouds, env=eb)
        root = next(r for r in xb["resources"] if r["type"] == "pulumi:pulumi:Stack")
        assert root["outputs"]["servers"] == ra["outputs"]["servers"] == [f"{SHARE}-db-01"]
        assert root["outputs"]["project"] == f"dept-{SHARE}"

        # ---- an up from A while B's runs: refused at once, naming B (the lock is in PostgreSQL)
        with _pg(pg_backend) as pg:
            pb_up = _spawn(_args("up", SHARE, SHARE_OP, catalog, clouds), eb)
            _wait(lambda: pg.execute("SELECT 1 FROM pg_tables WHERE tablename = 'yunshang_stack_locks'").fetchone()
                  and pg.execute("SELECT 1 FROM yunshang_stack_locks WHERE stack = %s AND pid = %s",
                                 (stack, pb_up.pid)).fetchone(), 300, "B's lock")
            second = cli(ea, *_args("up", SHARE, SHARE_OP, catalog, clouds), check=False)
            out, _ = pb_up.communicate(timeout=1200)
            transcript.append(out)
            assert pb_up.returncode == 0 and f"{stack}: up succeeded" in out, out
            assert second.returncode == 4, second.stdout + second.stderr
            assert f"stack {stack} is being changed by yunshang pid {pb_up.pid} on {socket.gethostname()}" \
                in second.stderr, second.stderr

            # ---- B killed mid-up (its engine holds Pulumi's lock in the table): A's next run takes over
            pb_up = _spawn(_args("up", SHARE, SHARE_OP, catalog, clouds), eb)
            seen: set[str] = set()

            def engine_lock():
                keys = [k for (k,) in pg.execute("SELECT key FROM pulumi_state")]
                seen.update(keys)
                if pb_up.poll() is not None:
                    raise AssertionError(f"B's up ended before its engine locked: keys {sorted(seen)}")
                return [k for k in keys if k.startswith("ypk_stacks/.pulumi/locks/")]  # keys: <db>/.pulumi/...
            print("engine lock:", _wait(engine_lock, 300, "the engine's lock of B's up", poll=0.1))
            transcript.append(_kill_group(pb_up))
            r = cli(ea, *_args("preview", SHARE, SHARE_OP, catalog, clouds))
            assert "note: removed Pulumi's lock left by" in r.stderr, r.stderr
            assert f"took over the lock left by yunshang pid {pb_up.pid} on" in r.stderr, r.stderr
            assert not pg.execute("SELECT 1 FROM pulumi_state WHERE key LIKE 'ypk\\_stacks/.pulumi/locks/%'").fetchone()

            # ---- a session still holding yunshang's advisory lock for a process that is gone
            # (a client killed without its socket closing): terminated, said so; one whose process
            # is alive: refused, untouched
            key = _lock_key(pg_backend, stack)
            for alive in (True, False):
                holder = _fake_process("yunshang-ypk-holder") if alive else None
                pid = holder.pid if holder else _dead_pid()
                ghost = _pg(pg_backend)
                try:
                    assert ghost.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
                    ghost.execute("INSERT INTO yunshang_stack_locks (stack, holder, host, pid, session) VALUES "
                                  "(%s, %s, %s, %s, pg_backend_pid()) ON CONFLICT (stack) DO UPDATE SET "
                                  "holder = EXCLUDED.holder, pid = EXCLUDED.pid, session = EXCLUDED.session",
                                  (stack, f"yunshang pid {pid} on {socket.gethostname()} since 2026-12-01T12:00:00Z",
                                   socket.gethostname(), pid))
                    r = cli(ea, *_args("preview", SHARE, SHARE_OP, catalog, clouds), check=False)
                    if alive:
                        assert r.returncode == 4, r.stdout + r.stderr
                        assert f"being changed by yunshang pid {pid} on {socket.gethostname()}" in r.stderr
                        assert ghost.execute("SELECT 1").fetchone() == (1,)        # its session untouched
                    else:
                        assert r.returncode == 0, r.stdout + r.stderr
                        assert f"took over the lock left by yunshang pid {pid} on" in r.stderr, r.stderr
                        assert "its PostgreSQL session was terminated" in r.stderr, r.stderr
                finally:
                    ghost.close()
                    if holder:
                        holder.kill()
                        holder.wait()

        # ---- converged after all that: B's up and A's preview agree, nothing to do
        rb = _json(cli(eb, *_args("up", SHARE, SHARE_OP, catalog, clouds, "--output", "json")))
        assert set(rb["changes"]) == {"same"}, rb["changes"]
        _verify(a, SHARE, SHARE_OP, catalog, clouds, env=ea)
        c = conn(SHARE_OP, clouds)
        _one_of_each_and_no_orphans(c, SHARE, _export(a, SHARE, SHARE_OP, catalog, clouds, env=ea), 0)
    finally:
        d = run_cli(a, *_args("destroy", SHARE, SHARE_OP, catalog, clouds, "--yes"), env=ea, check=False, timeout=1200)
        transcript.append(d.stdout + d.stderr)
    assert d.returncode == 0, d.stdout + d.stderr
    assert leftovers(SHARE_OP, clouds, SHARE) == []
    for text in transcript:  # the backend's password is in no output, no error
        assert PG_PASSWORD not in text
    for f in [*a.rglob("*"), *b.rglob("*")]:
        if f.is_file() and f.suffix != ".db":
            assert PG_PASSWORD.encode() not in f.read_bytes(), f"backend password in {f}"
