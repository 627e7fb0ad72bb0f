"""The Pulumi Automation API front: preview/up/refresh/destroy one department tenant stack.

One workspace per stack (`<department>.<operator>`) under ``<state>/pulumi/<stack>/``; the program
runs inline with the TenantSpec the core derived (what runs is exactly what `stack graph` showed).

Engine: the `pulumi` CLI, Python language host and OpenStack provider that `make pulumi` built and
linked into the venv (tools/pulumi/build.sh). Nothing is downloaded at run time: update checks and
automatic plugin acquisition are off, and the workspace's Pulumi.yaml names the local provider
binary (``plugins.providers``). The operator's credentials come only from its named clouds.yaml
entry: every OS_* variable but OS_CLIENT_CONFIG_FILE is removed from the engine's environment.

State backend: ``file://<state>/pulumi/backend`` by default; ``--backend`` / YUNSHANG_PULUMI_BACKEND
may name another (``postgres://user@host:port/db`` for teams sharing stacks). Secrets (initial
passwords) are encrypted with the passphrase in PULUMI_CONFIG_PASSPHRASE(_FILE), else with a
passphrase file yunshang creates (0600) beside the state.

One update at a time per stack: yunshang holds its own lock for the whole operation (Pulumi's DIY
lock is best effort), kept with the backend so workspaces sharing it share the lock: a flock in the
backend directory for file backends, a PostgreSQL advisory lock (+ a holder row) for postgres
backends. A second update of the same stack is refused at once, naming the holder; a lock left by a
killed holder is taken over, and said so.

An update killed halfway (SIGKILL) leaves "pending operations" in the state: resources the engine
had asked the cloud to create without recording the result. Before every operation they are
resolved against the cloud (stacks/pending.py): a resource that exists is adopted into the state,
one that does not is cleared; so the next `up` converges without duplicates or orphans.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import socket
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import yaml

from yunshang.admission import state_dir
from yunshang.errors import ToolMissing, YunshangError
from yunshang.tenant import TenantSpec

PULUMI_MISSING = ("the Pulumi engine is not installed: run `make pulumi` (builds it with Go >= 1.25), or put "
                  "pulumi >= v3.259 and pulumi-resource-openstack 5.5.1 on PATH; or use the openstacksdk engine: "
                  "yunshang tenant apply DEPT --operator OP")
PROJECT = "yunshang"
ROOT = Path(__file__).resolve().parents[1]
POLICY_PACK = Path(__file__).resolve().parent / "policy"


class StackBusy(YunshangError):
    """Another yunshang process is updating this stack."""

    exit_code = 4


def _bin_dir() -> Path:
    """Where `make pulumi` linked the engine: $YUNSHANG_PULUMI_DIR, else the venv's bin."""
    return Path(os.environ.get("YUNSHANG_PULUMI_DIR") or Path(sys.executable).parent)


def require_pulumi() -> str:
    """The `pulumi` binary: the venv's link (make pulumi) first, then PATH."""
    venv = _bin_dir() / "pulumi"
    if venv.exists() and (_bin_dir() / "pulumi-resource-openstack").exists():
        return str(venv)
    path = shutil.which("pulumi")
    if path is None or shutil.which("pulumi-resource-openstack") is None:
        raise ToolMissing(PULUMI_MISSING)
    return path


def _plugin_dir(name: str) -> str:
    """The real directory of an engine plugin binary (Pulumi.yaml plugins paths are directories)."""
    found = shutil.which(name, path=f"{_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise ToolMissing(PULUMI_MISSING)
    return str(Path(found).resolve().parent)


def backend_url(backend: str | None = None) -> str:
    url = backend or os.environ.get("YUNSHANG_PULUMI_BACKEND") or ""
    if not url:
        d = state_dir() / "pulumi" / "backend"
        d.mkdir(parents=True, exist_ok=True)
        return f"file://{d}"
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://"):]  # the spelling Pulumi's backend registers
    if not (url.startswith("file://") or url.startswith("postgres://")):
        raise YunshangError(f"--backend {_redact(url)!r}: expected file://DIR or postgres://USER@HOST:PORT/DB")
    return url


def workspace_dir(spec: TenantSpec) -> Path:
    return state_dir() / "pulumi" / spec.stack_name


def _passphrase_env() -> dict[str, str]:
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None:
        return {"PULUMI_CONFIG_PASSPHRASE": os.environ["PULUMI_CONFIG_PASSPHRASE"]}
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": os.environ["PULUMI_CONFIG_PASSPHRASE_FILE"]}
    f = state_dir() / "pulumi" / "passphrase"
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(f)}


def engine_env(clouds_file: str | None, home: Path) -> dict[str, str]:
    """The engine's environment: offline, our PULUMI_HOME, the named-cloud file only."""
    env = {"PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
           "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
           # every pending create written before the provider is asked (stacks/pending.py relies on it)
           "PULUMI_SKIP_CHECKPOINTS": "false",
           "PATH": f"{_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(_passphrase_env())
    if clouds_file:
        env["OS_CLIENT_CONFIG_FILE"] = str(Path(clouds_file).resolve())
    return env


def project_settings(backend: str) -> dict:
    """The workspace's Pulumi.yaml: local plugins only, the venv's Python, the backend URL without
    its password (engine_backend)."""
    return {"name": PROJECT, "runtime": {"name": "python", "options": {"virtualenv": str(_bin_dir().parent)}},
            "backend": {"url": engine_backend(backend)[0]},
            "plugins": {"providers": [{"name": "openstack", "path": _plugin_dir("pulumi-resource-openstack")}],
                        "languages": [{"name": "python", "path": _plugin_dir("pulumi-language-python")}]}}


CLOUDS_SEARCH = ("clouds.yaml", "~/.config/openstack/clouds.yaml", "/etc/openstack/clouds.yaml")


def _clouds_source(clouds_file: str | None) -> Path:
    for c in ([clouds_file] if clouds_file else [os.environ.get("OS_CLIENT_CONFIG_FILE"), *CLOUDS_SEARCH]):
        if c and Path(c).expanduser().is_file():
            return Path(c).expanduser().resolve()
    raise YunshangError("no clouds.yaml: pass --clouds FILE (the operators' named clouds)")


def derived_clouds(spec: TenantSpec, clouds_file: str | None, ws: Path) -> Path:
    """The engine's clouds.yaml (0600, in the workspace): the operator's entry as given, plus the
    entry `<cloud>/<project>` with the same account scoped to the department's project (the
    provider every resource inside the project uses). Other clouds are left out."""
    from yunshang.stackpolicy import project_cloud

    src = _clouds_source(clouds_file)
    try:
        clouds = (yaml.safe_load(src.read_text()) or {}).get("clouds") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise YunshangError(f"{src}: not a readable clouds.yaml ({type(exc).__name__})") from None
    entry = clouds.get(spec.cloud)
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), dict):
        raise YunshangError(f"{src}: clouds.{spec.cloud}: no such cloud entry with an auth block "
                            f"(operator {spec.operator} names cloud {spec.cloud!r})")
    scoped = json.loads(json.dumps(entry))
    for k in ("project_id", "tenant_id", "tenant_name", "system_scope", "domain_id", "domain_name"):
        scoped["auth"].pop(k, None)
    scoped["auth"]["project_name"] = spec.project.name
    scoped["auth"].pop("project_domain_name", None)
    scoped["auth"]["project_domain_id"] = spec.project.domain  # a Keystone domain id ("default")
    out = ws / "clouds.yaml"
    tmp = ws / "clouds.yaml.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Derived by yunshang from " + str(src) + " for stack " + spec.stack_name + "; do not edit.\n")
        yaml.safe_dump({"clouds": {spec.cloud: entry, project_cloud(spec.cloud, spec.project.name): scoped}}, fh,
                       sort_keys=True)
    os.replace(tmp, out)
    return out


def _strip_os_env() -> None:
    for k in [k for k in os.environ if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
        os.environ.pop(k)  # the engine inherits our environment: no credentials but the named cloud's


# ---- one update at a time per stack ---------------------------------------------------------

def _lock_key(backend: str, stack: str) -> int:
    return int.from_bytes(hashlib.sha256(f"yunshang-pulumi:{stack}".encode()).digest()[:8], "big", signed=True)


def pg_dsn(backend: str) -> tuple[str, str]:
    """A postgres:// backend URL -> (libpq URL without Pulumi's own `table` parameter, table name)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(backend.replace("postgres://", "postgresql://", 1))
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = next((v for k, v in query if k == "table"), "") or "pulumi_state"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", table):
        raise YunshangError(f"--backend {_redact(backend)!r}: table {table!r} is not a plain SQL name")
    return urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "table"]))), table


@contextlib.contextmanager
def pg_connect(backend: str):
    """(connection, Pulumi's table) of a postgres:// backend; errors name the URL without its password."""
    import psycopg

    dsn, table = pg_dsn(backend)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                               application_name=f"yunshang-stack pid {os.getpid()}")
    except psycopg.Error as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for secret in _url_passwords(backend):
            msg = msg.replace(secret, "***")
        raise YunshangError(f"backend {_redact(backend)}: cannot connect: {msg}") from None
    with conn:
        yield conn, table


def engine_backend(url: str) -> tuple[str, dict[str, str]]:
    """(backend URL for the engine, env): a postgres password leaves the URL for PGPASSWORD (libpq's
    and lib/pq's variable): Pulumi keeps the URL it is given in clear (PULUMI_HOME/workspaces/*.json),
    and the workspace's Pulumi.yaml names it."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if not url.startswith("postgres://"):
        return url, {}
    parts = urlsplit(url)
    if parts.password is None:
        return url, {}
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}")), {"PGPASSWORD": unquote(parts.password)}


def _url_passwords(url: str) -> list[str]:
    from urllib.parse import unquote, urlsplit

    pw = urlsplit(url.replace("postgres://", "postgresql://", 1)).password
    return [x for x in {pw, unquote(pw or "")} if x]


def lock_path(backend: str, stack: str, ws: Path) -> Path:
    """yunshang's lock file of a stack on a file:// backend: beside the state it guards (in the
    backend directory), so workspaces sharing the backend share the lock."""
    return Path(backend[len("file://"):].split("?", 1)[0]) / ".yunshang" / "locks" / f"{stack}.lock"


def _holder() -> str:
    return (f"yunshang pid {os.getpid()} on {socket.gethostname()} "
            f"since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")


PG_LOCKS = """CREATE TABLE IF NOT EXISTS yunshang_stack_locks (
    stack text PRIMARY KEY, holder text NOT NULL, host text NOT NULL, pid integer NOT NULL,
    session integer NOT NULL, since timestamptz NOT NULL DEFAULT now())"""


@contextlib.contextmanager
def stack_lock(backend: str, stack: str, ws: Path, notes: list[str] | None = None) -> Iterator[None]:
    """Hold the stack's lock for the whole operation or raise StackBusy at once.

    A lock left by a killed holder is taken over and said so in ``notes``: a flock dies with its
    process (what remains is the holder line, reported); a PostgreSQL advisory lock dies with its
    session, and a session whose client process (this host) is gone is terminated. A holder that
    is alive, or on another host, is never overridden."""
    notes = notes if notes is not None else []
    if backend.startswith("postgres"):
        with pg_connect(backend) as (conn, _table):
            yield from _pg_lock(conn, backend, stack, notes)
        return
    path = lock_path(backend, stack, ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
            raise StackBusy(f"stack {stack} is being changed by {who} (lock {path}): wait for it to finish, "
                            "then retry") from None
        old = os.pread(fd, 300, 0).decode(errors="replace").strip()
        if old:  # the flock was free, the line was not: its holder ended without releasing (killed)
            notes.append(f"stack {stack}: took over the lock left by {old} (that process is gone)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{_holder()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # still holding the lock: nobody reads a stale holder
    finally:
        os.close(fd)


def _pg_lock(conn, backend: str, stack: str, notes: list[str]) -> Iterator[None]:
    import psycopg

    from stacks.pending import _alive

    key = _lock_key(backend, stack)
    for attempt in range(3):  # concurrent first users race on CREATE TABLE IF NOT EXISTS
        try:
            conn.execute(PG_LOCKS)
            break
        except psycopg.errors.UniqueViolation:
            if attempt == 2:
                raise
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    if not got:
        row = conn.execute("SELECT holder, host, pid, session FROM yunshang_stack_locks WHERE stack = %s",
                           (stack,)).fetchone()
        sessions = {r[0] for r in conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND "
            "((classid::bigint << 32) | objid::bigint) = %s::bigint", (key,))}
        if row and row[3] in sessions and row[1] == socket.gethostname() and not _alive(row[2], b"yunshang"):
            conn.execute("SELECT pg_terminate_backend(%s)", (row[3],))
            deadline = time.monotonic() + 15
            while not got and time.monotonic() < deadline:
                time.sleep(0.2)
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            if got:
                notes.append(f"stack {stack}: took over the lock left by {row[0]} (that process is gone; its "
                             "PostgreSQL session was terminated)")
                conn.execute("DELETE FROM yunshang_stack_locks WHERE stack = %s", (stack,))
        if not got:
            who = row[0] if row and row[3] in sessions else "another session"
            raise StackBusy(f"stack {stack} is being changed by {who} (PostgreSQL advisory lock on "
                            f"{_redact(backend)}): wait for it to finish, then retry")
    try:
        old = conn.execute("SELECT holder FROM yunshang_stack_locks WHERE stack = %s", (stack,)).fetchone()
        if old:  # we hold the advisory lock: whoever wrote this row ended without releasing (killed)
            notes.append(f"stack {stack}: took over the lock left by {old[0]} (that process is gone)")
        conn.execute("INSERT INTO yunshang_stack_locks (stack, holder, host, pid, session) "
                     "VALUES (%s, %s, %s, %s, pg_backend_pid()) ON CONFLICT (stack) DO UPDATE SET "
                     "holder = EXCLUDED.holder, host = EXCLUDED.host, pid = EXCLUDED.pid, "
                     "session = EXCLUDED.session, since = now()",
                     (stack, _holder(), socket.gethostname(), os.getpid()))
        yield
    finally:
        conn.execute("DELETE FROM yunshang_stack_locks WHERE stack = %s AND session = pg_backend_pid()", (stack,))
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _redact(url: str) -> str:
    """A backend URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


# ---- the stack --------------------------------------------------------------------------------

def _stack(spec: TenantSpec, clouds_file: str | None, backend: str | None):
    require_pulumi()
    from pulumi import automation as auto

    from stacks.program import build_tenant, initial_passwords

    url = backend_url(backend)
    ws = workspace_dir(spec)
    work, home = ws / "work", state_dir() / "pulumi" / "home"
    work.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(project_settings(url), sort_keys=False))
    _strip_os_env()
    env = engine_env(str(derived_clouds(spec, clouds_file, ws)), home)
    env.update(engine_backend(url)[1])

    def program():
        build_tenant(spec, initial_passwords=initial_passwords(PROJECT))

    try:
        cmd = auto.PulumiCommand(root=str(Path(require_pulumi()).parent.parent))  # <root>/bin/pulumi
        lw = auto.LocalWorkspace(work_dir=str(work), pulumi_home=str(home), env_vars=env, program=program,
                                 pulumi_command=cmd)
        stack = auto.Stack.create_or_select(spec.stack_name, lw)
        stack.set_all_config(plan_config(spec))  # the stack names the recorded plan it is built from
    except FileNotFoundError as exc:  # the binary vanished between the check and now
        raise ToolMissing(PULUMI_MISSING) from exc
    except auto.CommandError as exc:
        raise YunshangError(f"stack {spec.stack_name}: {_engine_message(exc)}") from None
    return stack, url, ws


def plan_config(spec: TenantSpec) -> dict:
    """Stack config naming the recorded plan ``spec`` came from (id and content hash)."""
    from pulumi import automation as auto

    if spec.plan_id is None:
        raise YunshangError(f"stack {spec.stack_name}: its spec names no recorded plan (yunshang plan --save)")
    return {f"{PROJECT}:department": auto.ConfigValue(spec.department),
            f"{PROJECT}:operator": auto.ConfigValue(spec.operator),
            f"{PROJECT}:plan": auto.ConfigValue(str(spec.plan_id)),
            f"{PROJECT}:planHash": auto.ConfigValue(spec.plan_hash)}


def _ensure_passwords(stack, spec: TenantSpec) -> None:
    """Each user's initial password: generated once, kept only as a stack secret."""
    from pulumi import automation as auto

    if not spec.users:
        return
    cfg = stack.get_all_config()
    have = {}
    if f"{PROJECT}:initialPasswords" in cfg:
        have = json.loads(cfg[f"{PROJECT}:initialPasswords"].value)
    missing = [u.name for u in spec.users if u.name not in have]
    if missing:
        have.update({u: secrets.token_urlsafe(18) for u in missing})
        stack.set_config(f"{PROJECT}:initialPasswords", auto.ConfigValue(json.dumps(have, sort_keys=True), secret=True))


def _engine_message(exc) -> str:
    """The useful lines of a failed engine run (the CLI's error lines; never its full transcript)."""
    text = getattr(exc, "stderr", "") or str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.lower().startswith(("error", "  error")) or "error:" in ln.lower()]
    return "; ".join((errs or lines)[-4:])[:2000] or "the pulumi engine failed"


def _policy_args(spec: TenantSpec, ws: Path, catalog=None) -> dict:
    from stacks.policy.config import write_policy_config

    cfg = write_policy_config(spec, ws / "policy-config.json", catalog)
    return {"policy_packs": [str(POLICY_PACK)], "policy_pack_configs": [str(cfg)]}


def _step_collector():
    """on_event callback + the list of (op, type, name) steps it collects (no 'same')."""
    steps: list[dict] = []

    def on_event(ev) -> None:
        pre = getattr(ev, "resource_pre_event", None)
        if pre is None or pre.metadata is None:
            return
        op = getattr(pre.metadata.op, "value", str(pre.metadata.op))
        if op in ("same", "read", "refresh"):
            return
        urn = pre.metadata.urn
        steps.append({"op": op, "type": pre.metadata.type, "name": urn.rsplit("::", 1)[-1]})
    return on_event, steps


def run(spec: TenantSpec, verb: str, clouds_file: str | None = None, backend: str | None = None,
        on_output: Callable[[str], None] | None = None, refresh: bool = False, catalog=None) -> dict:
    """preview | up | refresh | destroy the stack of ``spec`` under its lock."""
    from pulumi import automation as auto

    from stacks.extras import delete_extra_rules, extra_rules
    from stacks.pending import clear_stale_engine_lock, refuse_untracked, resolve_pending

    stack, url, ws = _stack(spec, clouds_file, backend)
    out: dict = {"stack": spec.stack_name, "verb": verb, "backend": _redact(url)}
    on_event, steps = _step_collector()
    notes: list[str] = []
    out["recovered"] = notes  # what a killed earlier run left and this one repaired, said plainly
    with stack_lock(url, spec.stack_name, ws, notes):
        try:
            notes += clear_stale_engine_lock(stack, url)
            _ensure_passwords(stack, spec)
            pend = resolve_pending(stack, spec, clouds_file)
            if pend:
                out["pending_resolved"] = pend
                notes += [f"stack {spec.stack_name}: interrupted create of {p['urn'].rsplit('::', 1)[-1]} "
                          + (f"adopted (it exists: {p['id']})" if p["action"] == "adopt" else "cleared (never made)")
                          for p in pend]
            if verb == "preview":
                r = stack.preview(on_output=on_output, on_event=on_event, refresh=refresh,
                                  **_policy_args(spec, ws, catalog))
                out.update(changes=dict(r.change_summary), steps=steps)
                if refresh:
                    out["extra_rules"] = extra_rules(spec, clouds_file)
            elif verb == "up":
                refuse_untracked(stack, spec, clouds_file)
                r = stack.up(on_output=on_output, on_event=on_event, refresh=refresh,
                             **_policy_args(spec, ws, catalog))
                out.update(result=r.summary.result, changes=dict(r.summary.resource_changes or {}), steps=steps,
                           outputs={k: v.value for k, v in r.outputs.items() if not v.secret})
                out["extra_rules_deleted"] = delete_extra_rules(spec, clouds_file)
            elif verb == "refresh":
                r = stack.refresh(on_output=on_output, on_event=on_event)
                out.update(result=r.summary.result, changes=dict(r.summary.resource_changes or {}), steps=steps,
                           extra_rules=extra_rules(spec, clouds_file))
            elif verb == "destroy":
                r = stack.destroy(on_output=on_output, on_event=on_event)
                out.update(result=r.summary.result, changes=dict(r.summary.resource_changes or {}))
            else:
                raise ValueError(verb)
        except auto.CommandError as exc:
            raise YunshangError(f"stack {spec.stack_name}: {verb} failed: {_engine_message(exc)}") from None
        except FileNotFoundError as exc:
            raise ToolMissing(PULUMI_MISSING) from exc
    return out


def preview_stack(spec: TenantSpec, clouds_file: str | None = None, on_output=None, *, backend: str | None = None,
                  refresh: bool = False, catalog=None) -> dict:
    return run(spec, "preview", clouds_file, backend, on_output, refresh=refresh, catalog=catalog)


def refresh_stack(spec: TenantSpec, clouds_file: str | None = None, on_output=None, *,
                  backend: str | None = None) -> dict:
    return run(spec, "refresh", clouds_file, backend, on_output)


def up_stack(catalog, plan, spec: TenantSpec, clouds_file: str | None = None, on_output=None, *,
             backend: str | None = None, refresh: bool = True) -> dict:
    """Admit, then `pulumi up --refresh` ``spec``'s stack (catalog and plan are the ones ``spec``
    came from). The refresh reads the cloud first, so what was changed by hand is repaired.

    Admission (live Placement capacity + the department's quota usage, under the operator's
    ledger lock) runs before the engine; its reservation is released when the update ends."""
    require_pulumi()
    from yunshang.openstack.tenant import admit_live

    servers, volumes = _existing(spec, clouds_file)
    handle = admit_live(spec, clouds_file, existing_servers=servers, existing_volumes=volumes)
    try:
        return run(spec, "up", clouds_file, backend, on_output, refresh=refresh, catalog=catalog)
    finally:
        handle.release()


def _existing(spec: TenantSpec, clouds_file: str | None) -> tuple[list[str], list[str]]:
    """Names of the spec's servers and volumes that already exist in the project (their usage is
    already in the quota and capacity admission reads: not counted twice)."""
    from yunshang.openstack import connect

    conn = connect(spec.cloud, clouds_file)
    project = conn.identity.find_project(spec.project.name)
    if project is None:
        return [], []
    want_s, want_v = {s.name for s in spec.servers}, {v.name for v in spec.volumes}
    servers = [s.name for s in conn.compute.servers(all_projects=True, project_id=project.id) if s.name in want_s]
    volumes = [v.name for v in conn.block_storage.volumes(all_projects=True, project_id=project.id)
               if v.name in want_v]
    return sorted(servers), sorted(volumes)


def destroy_stack(spec: TenantSpec, clouds_file: str | None = None, on_output=None, *,
                  backend: str | None = None) -> dict:
    return run(spec, "destroy", clouds_file, backend, on_output)


def export_stack(spec: TenantSpec, clouds_file: str | None = None, *, backend: str | None = None) -> dict:
    """The stack's state (`pulumi stack export`, never --show-secrets: secrets stay ciphertext;
    the Automation API's export_stack decrypts them)."""
    stack, url, ws = _stack(spec, clouds_file, backend)
    return json.loads(pulumi_cli(stack, ["stack", "export", "--stack", stack.name]))["deployment"]


def pulumi_cli(stack, args: list[str], timeout: float = 1800) -> str:
    """Run the engine's CLI in the stack's workspace (its env, PULUMI_HOME, Pulumi.yaml); stdout."""
    import subprocess

    ws = stack.workspace
    env = {**os.environ, **(ws.env_vars or {})}
    if ws.pulumi_home:
        env["PULUMI_HOME"] = ws.pulumi_home
    r = subprocess.run([ws.pulumi_command.command, *args, "--non-interactive"], cwd=ws.work_dir, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = "; ".join([ln for ln in r.stderr.splitlines() if ln.strip()][-3:])
        raise YunshangError(f"stack {stack.name}: pulumi {args[0]} failed: {tail}")
    return r.stdout
