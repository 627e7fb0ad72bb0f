"""Bring the devcloud up, report it, take it down.

Start order (fits 2 cores): MariaDB -> epmd + RabbitMQ -> per operator: databases,
vhost -> db syncs (bounded pool, keystone first) -> keystone bootstrap + start ->
service catalog -> Placement, Nova API, Glance, Neutron, Cinder (gunicorn) ->
nova-conductor, nova-scheduler, cinder-scheduler, cinder-volume -> one
nova-compute per zone. Ready = every compute's heartbeat newer than its start
AND its host mapped (``nova-manage cell_v2 discover_hosts``). Then, per
operator: one aggregate per zone (availability zone), flavors, the "cirros"
image, the external network; and ``clouds.yaml``.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets as _secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import jinja2
import yaml

from yunshang.devcloud import layout as L
from yunshang.devcloud import procs
from yunshang.errors import DevcloudFailed  # also imported from here by callers

HERE = Path(__file__).resolve().parent
APT_PACKAGES = ("mariadb-server", "rabbitmq-server", "qemu-utils")
RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"

ProgressFn = Callable[[str], None]


# ------------------------------------------------------------------ helpers
def _noop(_: str) -> None:
    pass


def _run(argv: list[str], log: Path, *, env: dict | None = None, stdin: str | None = None,
         what: str = "", timeout: float = 900) -> str:
    """Run a command to completion, appending its output to ``log``; raise naming the log on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    for k in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "PYTHONPATH", "VIRTUAL_ENV"):
        full_env.pop(k, None)
    full_env.update(env or {})
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n".encode())
        fh.flush()
        try:
            p = subprocess.run(argv, input=stdin.encode() if stdin is not None else None,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DevcloudFailed(f"{what or argv[0]} timed out after {timeout:.0f} s; see {log}") from None
        except FileNotFoundError:
            raise DevcloudFailed(f"{what or argv[0]}: command not found ({argv[0]}); see {log}") from None
        fh.write(p.stdout)
    if p.returncode != 0:
        raise DevcloudFailed(f"{what or argv[0]} failed (exit {p.returncode}); see {log}")
    return p.stdout.decode(errors="replace")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def lock_hash() -> str:
    h = hashlib.sha256((HERE / "requirements-lock.txt").read_bytes())
    for f in sorted((HERE / "drivers").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and ".egg-info" not in str(f) and "build" not in f.parts:
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def dir_lock(devdir: Path, progress: ProgressFn = _noop) -> Iterator[None]:
    """Exclusive ``fcntl.flock`` on ``<dir>/.lock``: two ``up``/``down`` never run at once."""
    devdir.mkdir(parents=True, exist_ok=True)
    os.chmod(devdir, 0o700)
    fh = open(devdir / ".lock", "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another devcloud up/down on this dir")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


# ------------------------------------------------------------------ install
def missing_apt_packages() -> list[str]:
    out = []
    for p in APT_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            out.append(p)
    return out


def install_apt(devdir: Path, progress: ProgressFn = _noop) -> float:
    """Install missing Debian packages without letting apt start their daemons (policy-rc.d 101)."""
    missing = missing_apt_packages()
    if not missing:
        return 0.0
    t0 = time.monotonic()
    progress(f"apt-get install {' '.join(missing)}")
    log = devdir / "logs" / "install-apt.log"
    policy = Path("/usr/sbin/policy-rc.d")
    created = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# yunshang devcloud: keep apt from starting daemons on default ports\nexit 101\n")
        policy.chmod(0o755)
        created = True
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "update", "-qq"], log, env=env, what="apt-get update")
        _run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends",
              *missing], log, env=env, what="apt-get install")
    finally:
        if created:
            policy.unlink(missing_ok=True)
    return time.monotonic() - t0


def install_venv(venv: Path, devdir: Path, progress: ProgressFn = _noop) -> float:
    """The services' own venv from the pinned lock, plus the drivers package (--no-build-isolation)."""
    stamp = venv / ".yunshang-devcloud-stamp"
    want = lock_hash()
    if stamp.exists() and stamp.read_text().strip() == want:
        return 0.0
    t0 = time.monotonic()
    log = devdir / "logs" / "install-venv.log"
    py = venv / "bin" / "python"
    if not py.exists():
        progress(f"creating the services venv {venv}")
        base = getattr(sys, "_base_executable", None) or sys.executable
        _run([base, "-m", "venv", str(venv)], log, what="python -m venv")
    progress("pip install the OpenStack services from requirements-lock.txt (minutes, once)")
    pip_env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([str(py), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-lock.txt")], log, env=pip_env,
         what="pip install (services)", timeout=1800)
    progress("pip install the devcloud drivers (fakemech, yunshang_fakevirt)")
    build = devdir / "build" / "drivers"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(HERE / "drivers", build, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    _run([str(py), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", str(build)], log, env=pip_env,
         what="pip install (drivers)")
    stamp.write_text(want + "\n")
    return time.monotonic() - t0


# ------------------------------------------------------------------ state
@dataclass(frozen=True)
class OperatorSecrets:
    admin_password: str
    service_password: str
    db_password: str
    rabbit_password: str


PEOPLE_KEY = "people"     # secrets.json: {"people": {name: password}} beside the per-operator entries


def load_or_create_secrets(devdir: Path, operators: tuple[L.OperatorSpec, ...],
                           people: tuple[str, ...] = ()) -> dict[str, OperatorSecrets]:
    """Per-operator passwords (and the center's people's), generated once, kept in ``<dir>/secrets.json`` (0600)."""
    path = devdir / "secrets.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for o in operators:
        if o.name not in data:
            data[o.name] = {k: _secrets.token_urlsafe(18) for k in OperatorSecrets.__dataclass_fields__}
            changed = True
    for name in people:
        if name not in data.setdefault(PEOPLE_KEY, {}):
            data[PEOPLE_KEY][name] = _secrets.token_urlsafe(18)
            changed = True
    if changed or not path.exists():
        _write_private(path, json.dumps(data, indent=2))
    return {k: OperatorSecrets(**v) for k, v in data.items() if k != PEOPLE_KEY}


def people_passwords(devdir: Path) -> dict[str, str]:
    """The generated passwords of the center's people (never printed; tests read them from here)."""
    path = devdir / "secrets.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return dict(data.get(PEOPLE_KEY, {}))


class Devcloud:
    """One devcloud directory: its layout, secrets, processes."""

    def __init__(self, devdir: Path | str | None = None, venv: Path | str | None = None,
                 operators: tuple[L.OperatorSpec, ...] | None = None, progress: ProgressFn = _noop,
                 port_offset: int | None = None, catalog_dir: Path | str | None = None):
        self.dir = Path(devdir or L.default_dir()).expanduser().resolve()
        self.venv = Path(venv or L.default_venv()).expanduser()
        recorded = self._recorded()
        if port_offset is None:
            port_offset = int(recorded.get("port_offset", L.default_port_offset()))
        self.port_offset = port_offset
        self.mariadb_port = L.MARIADB_PORT + port_offset
        self.rabbit_port = L.RABBIT_PORT + port_offset
        self.rabbit_dist_port = L.RABBIT_DIST_PORT + port_offset
        self.epmd_port = L.EPMD_PORT + port_offset
        if operators is None:
            operators = self.recorded_operators()
        operators = tuple(dataclasses.replace(o, port_offset=port_offset) for o in operators)
        self.layout = L.Layout(self.dir, self.venv, operators)
        self.center = L.center_spec(port_offset)
        self.catalog_dir = Path(catalog_dir or L.default_catalog())
        self._people = None
        self.progress = progress
        self.started_names: set[str] = set()     # what the last up() started itself
        self._secrets: dict[str, OperatorSecrets] | None = None
        self._jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                         undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    # ---- recorded state
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def _recorded(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def recorded_operators(self) -> tuple[L.OperatorSpec, ...]:
        data = self._recorded()
        return tuple(L.OperatorSpec(name=o["name"], index=o["index"], external_network=o["external_network"],
                                    zones=tuple(L.ZoneSpec(**z) for z in o["zones"]))
                     for o in data.get("operators", []))

    def _write_state(self, timings: dict[str, float]) -> None:
        old = {}
        with contextlib.suppress(OSError, ValueError):
            old = json.loads(self.state_file.read_text())
        data = {
            "operators": [{"name": o.name, "index": o.index, "external_network": o.external_network,
                           "zones": [z.__dict__ for z in o.zones], "ports": o.ports} for o in self.layout.operators],
            "port_offset": self.port_offset,
            "shared_ports": {"mariadb": self.mariadb_port, "rabbitmq": self.rabbit_port, "epmd": self.epmd_port},
            "venv": str(self.venv),
            "timings_seconds": {**old.get("timings_seconds", {}), **timings},
        }
        self.state_file.write_text(json.dumps(data, indent=2))

    @property
    def secrets(self) -> dict[str, OperatorSecrets]:
        if self._secrets is None:
            self._secrets = load_or_create_secrets(self.dir, self.layout.operators + (self.center,),
                                                   tuple(p.name for p in self.people))
        return self._secrets

    @property
    def people(self) -> tuple:
        """The people of the catalog's people.yaml (the catalog is validated as a whole first)."""
        if self._people is None:
            from yunshang.catalog import load_catalog

            self._people = load_catalog(self.catalog_dir).people
        return self._people

    # ---- paths
    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def etc(self, op: L.OperatorSpec) -> Path:
        return self.dir / "etc" / op.name

    def state(self, op: L.OperatorSpec) -> Path:
        return self.dir / "state" / op.name

    def oplog(self, op: L.OperatorSpec, name: str) -> Path:
        return self.dir / "logs" / op.name / name

    def mysql_argv(self) -> list[str]:
        return ["mysql", f"--defaults-file={self.dir}/mysql/my.cnf", "-uroot", "-N", "-B"]

    def rabbit_env(self) -> dict[str, str]:
        env = {}
        for line in (self.dir / "rabbit" / "env.sh").read_text().splitlines():
            if line.startswith("export "):
                import shlex

                for part in shlex.split(line[len("export "):]):
                    k, _, v = part.partition("=")
                    env[k] = v
        return env

    # ---- configs
    def _op_ctx(self, op: L.OperatorSpec) -> dict:
        s = self.secrets[op.name]
        return {
            "name": op.name,
            "keystone_url": f"http://127.0.0.1:{op.port('keystone')}",
            "service_password": s.service_password,
            "db_url": f"mysql+pymysql://{op.name}:{s.db_password}@127.0.0.1:{self.mariadb_port}",
            "transport_url": f"rabbit://{op.name}:{s.rabbit_password}@127.0.0.1:{self.rabbit_port}/{op.name}",
            "etc": str(self.etc(op)),
            "state": str(self.state(op)),
            "physnet": "public",
        }

    def _render(self, template: str, dest: Path, **ctx) -> None:
        text = self._jinja.get_template(template).render(dir=str(self.dir), **ctx)
        _write_private(dest, text)

    def write_shared_configs(self) -> None:
        d = self.dir
        for sub in ("logs", "pids", "wsgi", "mysql/data", "mysql/run", "rabbit/mnesia", "rabbit/log", "images"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        ports = {"mariadb_port": self.mariadb_port, "rabbit_port": self.rabbit_port,
                 "rabbit_dist_port": self.rabbit_dist_port, "epmd_port": self.epmd_port}
        self._render("my.cnf.j2", d / "mysql" / "my.cnf", **ports)
        self._render("rabbitmq.conf.j2", d / "rabbit" / "rabbitmq.conf", **ports)
        self._render("rabbitmq-env.sh.j2", d / "rabbit" / "env.sh", **ports)
        (d / "rabbit" / "rabbitmq-env.conf").write_text("")
        (d / "rabbit" / "enabled_plugins").write_text("[].\n")
        # WSGI shims: oslo.config would otherwise parse gunicorn's argv.
        for name, mod in (("keystone", "keystone.wsgi.api"), ("placement", "placement.wsgi.api"),
                          ("nova_api", "nova.wsgi.osapi_compute"), ("glance", "glance.wsgi.api"),
                          ("neutron", "neutron.wsgi.api")):
            (d / "wsgi" / f"{name}_app.py").write_text(
                f"import sys\nsys.argv = sys.argv[:1]\nfrom {mod} import application  # noqa\n")
        (d / "wsgi" / "cinder_api_app.py").write_text(
            'import os, sys\nsys.argv = [sys.argv[0], "--config-file", os.environ["CINDER_CONF"]]\n'
            "from cinder.wsgi.api import application  # noqa\n")

    def write_operator_configs(self, op: L.OperatorSpec) -> None:
        ctx = self._op_ctx(op)
        etc, st = self.etc(op), self.state(op)
        for sub in ("keystone", "placement", "nova", "nova-compute", "glance", "neutron/plugins/ml2", "cinder"):
            (etc / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("keystone", "nova/lock", "nova/control", "glance/images", "glance/staging", "glance/tasks",
                    "neutron/lock", "cinder/lock", "cinder/coord"):
            (st / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "logs" / op.name).mkdir(parents=True, exist_ok=True)
        ve = self.venv / "etc"
        shutil.copy(ve / "nova" / "api-paste.ini", etc / "nova")
        shutil.copy(ve / "glance" / "glance-api-paste.ini", etc / "glance")
        shutil.copy(ve / "neutron" / "api-paste.ini", etc / "neutron")
        shutil.copy(ve / "cinder" / "api-paste.ini", etc / "cinder")
        shutil.copy(ve / "cinder" / "resource_filters.json", etc / "cinder")
        self._render("keystone.conf.j2", etc / "keystone" / "keystone.conf", op=ctx)
        self._render("placement.conf.j2", etc / "placement" / "placement.conf", op=ctx)
        self._render("nova.conf.j2", etc / "nova" / "nova.conf", op=ctx, zone=None)
        for z in op.zones:
            (st / "nova" / z.name / "instances").mkdir(parents=True, exist_ok=True)
            self._render("nova.conf.j2", etc / "nova-compute" / f"{z.name}.conf", op=ctx,
                         zone={"name": z.name, "host": op.compute_host(z.name), "spec": z},
                         reserved_host_memory_mb=L.RESERVED_HOST_MEMORY_MB, reserved_host_cpus=L.RESERVED_HOST_CPUS,
                         reserved_host_disk_mb=L.RESERVED_HOST_DISK_MB)
        self._render("glance-api.conf.j2", etc / "glance" / "glance-api.conf", op=ctx)
        self._render("neutron.conf.j2", etc / "neutron" / "neutron.conf", op=ctx)
        self._render("ml2_conf.ini.j2", etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini", op=ctx)
        self._render("cinder.conf.j2", etc / "cinder" / "cinder.conf", op=ctx)

    # ---- process helpers
    def _ensure_port_free(self, port: int, who: str) -> None:
        if procs.port_in_use(port):
            raise DevcloudFailed(
                f"port 127.0.0.1:{port} (for {who}) is in use by a process this devcloud ({self.dir}) did not "
                f"start; stop it or use another machine/dir (`ss -ltnp 'sport = :{port}'` shows who)")

    def _start(self, name: str, argv: list[str], env: dict | None = None, port: int | None = None) -> bool:
        """Start ``name`` unless it is already running (ours) with the same command line.

        A running process whose command line changed (e.g. a new gunicorn option) is restarted;
        one started before command lines were recorded is adopted as it is. Returns True when
        started now.
        """
        digest = hashlib.sha256(json.dumps([argv, sorted((env or {}).items())]).encode()).hexdigest()[:16]
        argv_f = Path(str(procs.pid_file(self.dir, name)) + ".argv")
        if procs.running_pid(self.dir, name):
            if not argv_f.exists():
                argv_f.write_text(digest + "\n")
                return False
            if argv_f.read_text().strip() == digest:
                return False
            self.progress(f"restarting {name} (command line changed)")
            procs.stop(self.dir, name)
        if port is not None:
            self._ensure_port_free(port, name)
        procs.start(self.dir, name, argv, env)
        argv_f.write_text(digest + "\n")
        self.started_names.add(name)
        return True

    def _wait(self, name: str, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not procs.running_pid(self.dir, name):
                time.sleep(0.5)
                if check():
                    return
                raise DevcloudFailed(f"{what} exited during start; see {procs.log_file(self.dir, name)}")
            time.sleep(0.5)
        raise DevcloudFailed(f"{what} did not come up within {timeout:.0f} s; see {procs.log_file(self.dir, name)}")

    # ---- shared services
    def start_mariadb(self) -> None:
        my = self.dir / "mysql" / "my.cnf"
        if not (self.dir / "mysql" / "data" / "mysql").exists():
            _run(["mariadb-install-db", f"--defaults-file={my}", "--auth-root-authentication-method=normal"],
                 self.dir / "logs" / "mysql-install.log", what="mariadb-install-db")
        self._start("mysqld", ["mariadbd", f"--defaults-file={my}"], port=self.mariadb_port)

        def ping() -> bool:
            return subprocess.run(["mysqladmin", f"--defaults-file={my}", "-uroot", "ping"],
                                  capture_output=True).returncode == 0
        self._wait("mysqld", ping, 60, f"MariaDB on 127.0.0.1:{self.mariadb_port} (log {self.dir}/logs/mysqld.err)")

    def start_rabbit(self) -> None:
        env = self.rabbit_env()
        self._start("epmd", ["epmd", "-address", "127.0.0.1", "-port", str(self.epmd_port)], env=env, port=self.epmd_port)
        time.sleep(0.3)
        self._start("rabbitmq", [RABBIT_SERVER], env=env, port=self.rabbit_port)

    def wait_rabbit(self) -> None:
        env = self.rabbit_env()
        try:
            _run([RABBITMQCTL, "wait", "--timeout", "120", env["RABBITMQ_PID_FILE"]], self.dir / "logs" / "rabbitctl.log",
                 env=env, what="RabbitMQ start", timeout=150)
        except DevcloudFailed as exc:
            raise DevcloudFailed(f"RabbitMQ did not come up on 127.0.0.1:{self.rabbit_port}; see "
                                 f"{procs.log_file(self.dir, 'rabbitmq')} and {self.dir}/rabbit/log") from exc

    def sql(self, statements: str) -> str:
        return _run(self.mysql_argv(), self.dir / "logs" / "mysql-client.log", stdin=statements, what="mysql")

    def query(self, statement: str) -> list[list[str]]:
        r = subprocess.run(self.mysql_argv() + ["-e", statement], capture_output=True, text=True)
        if r.returncode != 0:
            return []
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def ensure_operator_db_and_vhost(self, op: L.OperatorSpec) -> None:
        s = self.secrets[op.name]
        dbs = "".join(f"CREATE DATABASE IF NOT EXISTS `{op.db(x)}`;\n" for x in L.DB_SERVICES)
        self.sql(f"CREATE USER IF NOT EXISTS '{op.name}'@'127.0.0.1' IDENTIFIED BY '{s.db_password}';\n"
                 f"ALTER USER '{op.name}'@'127.0.0.1' IDENTIFIED BY '{s.db_password}';\n{dbs}"
                 f"GRANT ALL PRIVILEGES ON `{op.name}\\_%`.* TO '{op.name}'@'127.0.0.1';\nFLUSH PRIVILEGES;\n")
        env = self.rabbit_env()
        log = self.dir / "logs" / "rabbitctl.log"
        vhosts = _run([RABBITMQCTL, "list_vhosts", "-q"], log, env=env, what="rabbitmqctl list_vhosts").split()
        if op.name not in vhosts:
            _run([RABBITMQCTL, "add_vhost", op.name], log, env=env, what="rabbitmqctl add_vhost")
        users = _run([RABBITMQCTL, "list_users", "-q"], log, env=env, what="rabbitmqctl list_users")
        if not any(line.split() and line.split()[0] == op.name for line in users.splitlines()):
            # no password on the command line: rabbitmqctl reads it from stdin
            _run([RABBITMQCTL, "add_user", op.name], log, env=env, stdin=s.rabbit_password + "\n",
                 what="rabbitmqctl add_user")
        else:
            _run([RABBITMQCTL, "change_password", op.name], log, env=env, stdin=s.rabbit_password + "\n",
                 what="rabbitmqctl change_password")
        _run([RABBITMQCTL, "set_permissions", "-p", op.name, op.name, ".*", ".*", ".*"], log, env=env,
             what="rabbitmqctl set_permissions")

    # ---- per operator
    def dbsync_keystone(self, op: L.OperatorSpec) -> None:
        log = self.oplog(op, "dbsync-keystone.log")
        conf = str(self.etc(op) / "keystone" / "keystone.conf")
        k = [self.bin("keystone-manage"), "--config-file", conf]
        _run(k + ["db_sync"], log, what=f"{op.name} keystone db_sync")
        _run(k + ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"], log,
             what=f"{op.name} keystone fernet_setup")
        _run(k + ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"], log,
             what=f"{op.name} keystone credential_setup")
        url = f"http://127.0.0.1:{op.port('keystone')}/v3"
        _run(k + ["bootstrap", "--bootstrap-region-id", "RegionOne", "--bootstrap-admin-url", url,
                  "--bootstrap-internal-url", url, "--bootstrap-public-url", url], log,
             env={"OS_BOOTSTRAP_PASSWORD": self.secrets[op.name].admin_password},
             what=f"{op.name} keystone bootstrap")

    def dbsync_others(self, op: L.OperatorSpec, service: str) -> None:
        etc = self.etc(op)
        log = self.oplog(op, f"dbsync-{service}.log")
        what = f"{op.name} {service} db sync"
        if service == "placement":
            _run([self.bin("placement-manage"), "--config-file", str(etc / "placement/placement.conf"), "db", "sync"],
                 log, what=what)
        elif service == "glance":
            _run([self.bin("glance-manage"), "--config-file", str(etc / "glance/glance-api.conf"), "db_sync"], log,
                 what=what)
        elif service == "neutron":
            _run([self.bin("neutron-db-manage"), "--config-file", str(etc / "neutron/neutron.conf"), "--config-file",
                  str(etc / "neutron/plugins/ml2/ml2_conf.ini"), "upgrade", "heads"], log, what=what)
        elif service == "cinder":
            _run([self.bin("cinder-manage"), "--config-file", str(etc / "cinder/cinder.conf"), "db", "sync"], log,
                 what=what)
        elif service == "nova":
            nm = [self.bin("nova-manage"), "--config-file", str(etc / "nova/nova.conf")]
            _run(nm + ["api_db", "sync"], log, what=what)
            cells = _run(nm + ["cell_v2", "list_cells"], log, what=what)
            if " cell0 " not in cells:
                _run(nm + ["cell_v2", "map_cell0"], log, what=what)   # cell0 db = <nova db>_cell0
            if " cell1 " not in cells:
                _run(nm + ["cell_v2", "create_cell", "--name", "cell1"], log, what=what)
            _run(nm + ["db", "sync"], log, what=what)

    def start_keystone(self, op: L.OperatorSpec) -> None:
        self._gunicorn(op, "keystone", {"OS_KEYSTONE_CONFIG_FILES": str(self.etc(op) / "keystone/keystone.conf")})

    def _gunicorn(self, op: L.OperatorSpec, svc: str, env: dict[str, str]) -> None:
        port = op.port(svc)
        argv = [self.bin("gunicorn"), "--no-control-socket", "--chdir", str(self.dir / "wsgi"),
                "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8", "--worker-class", "gthread",
                "--timeout", "300", "--keep-alive", "120",
                # nova lists ports of many servers in one GET: the URL outgrows gunicorn's 4094-byte default
                "--limit-request-line", "0", "--limit-request-field_size", "0",
                "--name", f"{op.name}-{svc}" + (f"+{self.port_offset}" if self.port_offset else ""),
                f"{svc}_app:application"]
        self._start(f"{op.name}/{svc}", argv, env=env, port=port)

    def wait_http(self, op: L.OperatorSpec, svc: str, timeout: float = 300) -> None:
        url = f"http://127.0.0.1:{op.port(svc)}/" + ("v3" if svc == "keystone" else "")
        self._wait(f"{op.name}/{svc}", lambda: procs.http_ok(url), timeout,
                   f"{op.name} {svc} on 127.0.0.1:{op.port(svc)}")

    def register_catalog(self, op: L.OperatorSpec) -> None:
        spec = {"auth_url": op.auth_url, "admin_password": self.secrets[op.name].admin_password,
                "service_password": self.secrets[op.name].service_password,
                "endpoints": [["placement", "placement", f"http://127.0.0.1:{op.port('placement')}"],
                              ["nova", "compute", f"http://127.0.0.1:{op.port('nova_api')}/v2.1"],
                              ["glance", "image", f"http://127.0.0.1:{op.port('glance')}"],
                              ["neutron", "network", f"http://127.0.0.1:{op.port('neutron')}"],
                              ["cinder", "block-storage", f"http://127.0.0.1:{op.port('cinder_api')}/v3"]]}
        _run([self.bin("python"), str(HERE / "scripts" / "register_catalog.py")], self.oplog(op, "catalog.log"),
             stdin=json.dumps(spec), what=f"{op.name} service catalog")

    def start_services(self, op: L.OperatorSpec) -> None:
        etc = self.etc(op)
        self._gunicorn(op, "placement", {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")})
        self._gunicorn(op, "nova_api", {"OS_NOVA_CONFIG_DIR": str(etc / "nova")})
        self._gunicorn(op, "glance", {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")})
        self._gunicorn(op, "neutron", {"OS_NEUTRON_CONFIG_DIR": str(etc / "neutron")})
        self._gunicorn(op, "cinder_api", {"CINDER_CONF": str(etc / "cinder/cinder.conf")})
        for d in L.DAEMONS:
            conf = etc / ("nova/nova.conf" if d.startswith("nova") else "cinder/cinder.conf")
            self._start(f"{op.name}/{d}", [self.bin(d), "--config-file", str(conf),
                                           "--log-file", str(self.oplog(op, f"{d}.log"))])

    def start_computes(self, op: L.OperatorSpec) -> None:
        for z in op.zones:
            name = f"{op.name}/nova-compute-{z.name}"
            conf = self.etc(op) / f"nova-compute/{z.name}.conf"
            digest = hashlib.sha256(conf.read_bytes() + lock_hash().encode()).hexdigest()   # + the driver code
            hash_f = Path(str(procs.pid_file(self.dir, name)) + ".conf")
            if procs.running_pid(self.dir, name):
                if hash_f.exists() and hash_f.read_text().strip() == digest:
                    continue
                # its config or driver changed (e.g. the catalog's zone figures): restart it to report the new inventory
                self.progress(f"{op.name}: restarting nova-compute {z.name} (config or driver changed)")
                procs.stop(self.dir, name)
            now = self.query("select utc_timestamp()")
            procs.pid_file(self.dir, name).parent.mkdir(parents=True, exist_ok=True)
            self._start(name, [self.bin("python"), "-m", "yunshang_fakevirt.compute",
                               "--config-file", str(self.etc(op) / f"nova-compute/{z.name}.conf"),
                               "--log-file", str(self.oplog(op, f"nova-compute-{z.name}.log"))])
            Path(str(procs.pid_file(self.dir, name)) + ".start").write_text(now[0][0] if now else "")
            hash_f.write_text(digest + "\n")

    def restore_operator(self, name: str, timeout: float = 180) -> list[str]:
        """Start whatever of operator ``name``'s API services and daemons is not running, wait for the APIs.

        For tests that stop one service on purpose. Returns the process names started.
        """
        op = self.layout.operator(name)
        self.started_names = set()
        with dir_lock(self.dir, self.progress):
            if not procs.running_pid(self.dir, f"{op.name}/keystone"):
                self.start_keystone(op)
            self.start_services(op)
            for svc in ("keystone",) + L.API_SERVICES:
                self.wait_http(op, svc, timeout)
        return sorted(self.started_names)

    def computes_ready(self, op: L.OperatorSpec) -> list[str]:
        """Zones whose compute is NOT ready yet (heartbeat newer than its start, host mapped)."""
        pending = []
        mapped = {r[0] for r in self.query(f"select host from `{op.db('nova_api')}`.host_mappings")}
        for z in op.zones:
            host = op.compute_host(z.name)
            start_f = Path(str(procs.pid_file(self.dir, f"{op.name}/nova-compute-{z.name}")) + ".start")
            start = start_f.read_text().strip() if start_f.exists() else "1970-01-01 00:00:00"
            rows = self.query(f"select count(*) from `{op.db('nova')}`.services where `binary`='nova-compute' "
                              f"and deleted=0 and host='{host}' and updated_at >= '{start}'")
            if not rows or rows[0][0] == "0" or host not in mapped:
                pending.append(z.name)
        return pending

    def wait_computes(self, op: L.OperatorSpec, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        nm = [self.bin("nova-manage"), "--config-file", str(self.etc(op) / "nova/nova.conf")]
        while True:
            pending = self.computes_ready(op)
            if not pending:
                return
            for z in pending:
                name = f"{op.name}/nova-compute-{z}"
                if not procs.running_pid(self.dir, name):
                    raise DevcloudFailed(f"{op.name} nova-compute ({z}) exited during start; see "
                                         f"{self.oplog(op, f'nova-compute-{z}.log')} and {procs.log_file(self.dir, name)}")
            if time.monotonic() > deadline:
                raise DevcloudFailed(f"{op.name} nova-compute for {', '.join(pending)} not ready within "
                                     f"{timeout:.0f} s; see {self.oplog(op, 'nova-compute-' + pending[0] + '.log')}")
            _run(nm + ["cell_v2", "discover_hosts"], self.oplog(op, "discover-hosts.log"),
                 what=f"{op.name} discover_hosts")
            time.sleep(2)

    def tiny_image(self) -> Path:
        img = self.dir / "images" / "cirros.qcow2"
        if not img.exists():
            _run(["qemu-img", "create", "-f", "qcow2", str(img), "64M"], self.dir / "logs" / "qemu-img.log",
                 what="qemu-img create")
        return img

    def setup_operator(self, op: L.OperatorSpec) -> None:
        spec = {"cloud": op.name, "clouds_file": str(self.layout.clouds_file),
                "zones": [[z.name, op.compute_host(z.name)] for z in op.zones],
                "flavors": L.FLAVORS, "image": str(self.tiny_image()),
                "external_network": op.external_network, "physnet": "public", "cidr": op.external_cidr}
        _run([self.bin("python"), str(HERE / "scripts" / "setup_operator.py")], self.oplog(op, "setup.log"),
             stdin=json.dumps(spec), what=f"{op.name} setup (aggregates, flavors, image, external network)")

    def write_clouds_yaml(self) -> None:
        def entry(auth_url: str, user: str, password: str, project: str) -> dict:
            return {"auth": {"auth_url": auth_url, "username": user, "password": password, "project_name": project,
                             "user_domain_name": "Default", "project_domain_name": "Default"},
                    "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
        clouds = {op.name: entry(op.auth_url, "admin", self.secrets[op.name].admin_password, "admin")
                  for op in self.layout.operators}
        c = self.center
        clouds[L.CENTER] = entry(c.auth_url, "admin", self.secrets[L.CENTER].admin_password, "admin")
        passwords = people_passwords(self.dir)
        for p in self.people:
            clouds[L.person_cloud(p.name)] = entry(c.auth_url, p.name, passwords[p.name], _person_project(p))
        # written beside and renamed over: readers (tests of a running session) never see half a file
        tmp = self.layout.clouds_file.with_name(".clouds.yaml.tmp")
        _write_private(tmp, "# Written by `yunshang devcloud up`: one admin entry per operator (each its own "
                            "cloud), `center` (the center's Keystone) and `person-<name>` per person of people.yaml.\n"
                       + yaml.safe_dump({"clouds": clouds}, sort_keys=False, allow_unicode=True))
        os.replace(tmp, self.layout.clouds_file)

    # ---- the center's identity (Keystone only)
    def ensure_center_db(self) -> None:
        c, s = self.center, self.secrets[L.CENTER]
        self.sql(f"CREATE USER IF NOT EXISTS '{c.name}'@'127.0.0.1' IDENTIFIED BY '{s.db_password}';\n"
                 f"ALTER USER '{c.name}'@'127.0.0.1' IDENTIFIED BY '{s.db_password}';\n"
                 f"CREATE DATABASE IF NOT EXISTS `{c.db('keystone')}`;\n"
                 f"GRANT ALL PRIVILEGES ON `{c.name}\\_%`.* TO '{c.name}'@'127.0.0.1';\nFLUSH PRIVILEGES;\n")

    def setup_people(self) -> None:
        """Roles, projects (center, dept-<department>) and one user per person, in the center's Keystone."""
        passwords = people_passwords(self.dir)
        from yunshang.model import PERSON_ROLES

        spec = {"auth_url": self.center.auth_url, "admin_password": self.secrets[L.CENTER].admin_password,
                "roles": list(PERSON_ROLES),
                "people": [{"name": p.name, "display_name": p.display_name, "password": passwords[p.name],
                            "project": _person_project(p), "roles": list(p.roles), "email": p.email}
                           for p in self.people]}
        _run([self.bin("python"), str(HERE / "scripts" / "setup_people.py")], self.oplog(self.center, "people.log"),
             stdin=json.dumps(spec), what="center people (users, roles, projects)")

    def up_center(self) -> None:
        """Add the center's Keystone (and its people) to a devcloud; touches no operator process."""
        c = self.center
        p = self.progress
        p("center: keystone (the center's identity) and its people")
        (self.etc(c) / "keystone").mkdir(parents=True, exist_ok=True)
        (self.state(c) / "keystone").mkdir(parents=True, exist_ok=True)
        (self.dir / "logs" / c.name).mkdir(parents=True, exist_ok=True)
        self._render("keystone.conf.j2", self.etc(c) / "keystone" / "keystone.conf", op=self._op_ctx(c))
        self._once(c, "db", self._key(c, "db"), self.ensure_center_db)
        self._once(c, "keystone", lock_hash(), lambda: self.dbsync_keystone(c))
        self.start_keystone(c)
        self.wait_http(c, "keystone")
        want = hashlib.sha256(json.dumps([[p.__dict__ for p in self.people], people_passwords(self.dir),
                                          self._key(c, "people")], default=str).encode()).hexdigest()[:16]
        self._once(c, "people", want, self.setup_people)

    # ---- the whole thing
    def up(self, install: bool = True) -> dict[str, float]:
        """Install what is missing, start what is not running, wait until ready. Idempotent."""
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        p = self.progress
        with dir_lock(self.dir, p):
            if install:
                p("checking Debian packages")
                timings["install_apt_seconds"] = install_apt(self.dir, p)
                p("checking the services venv")
                timings["install_venv_seconds"] = install_venv(self.venv, self.dir, p)
            ops = self.layout.operators
            self.started_names = set()
            self._write_state({})          # status/down know operators and ports even if up fails midway
            self._assert_ports_ok()
            t_start = time.monotonic()
            p("writing configs")
            self.write_shared_configs()
            for op in ops:
                self.write_operator_configs(op)
            _ = self.secrets                 # generated before clouds.yaml names them
            self.write_clouds_yaml()
            p("starting MariaDB and RabbitMQ")
            self.start_mariadb()
            self.start_rabbit()
            self.wait_rabbit()
            for op in ops:
                p(f"{op.name}: databases and vhost")
                # stamped with the operator's passwords: skipped on a restart, redone when they change
                self._once(op, "db-and-vhost", self._key(op, "db"), lambda o=op: self.ensure_operator_db_and_vhost(o))
            want = lock_hash()
            p("database schemas (db sync)")
            with cf.ThreadPoolExecutor(max_workers=3) as pool:
                ks = {op.name: pool.submit(self._once, op, "keystone", want, lambda o=op: self.dbsync_keystone(o))
                      for op in ops}
                others = [pool.submit(self._once, op, svc, want, lambda o=op, s=svc: self.dbsync_others(o, s))
                          for op in ops for svc in ("nova", "neutron", "placement", "cinder", "glance")]
                for op in ops:
                    ks[op.name].result()
                    p(f"{op.name}: keystone")
                    self.start_keystone(op)
                    self.wait_http(op, "keystone")
                    p(f"{op.name}: service catalog")
                    self._once(op, "catalog", self._key(op, "catalog"), lambda o=op: self.register_catalog(o))
                for f in others:
                    f.result()
            for op in ops:
                p(f"{op.name}: APIs and daemons")
                self.start_services(op)
            for op in ops:
                for svc in L.API_SERVICES:
                    self.wait_http(op, svc)
            for op in ops:
                p(f"{op.name}: nova-compute per zone ({', '.join(z.name for z in op.zones)})")
                self.start_computes(op)
            for op in ops:
                p(f"{op.name}: waiting for compute heartbeats and host mapping")
                self.wait_computes(op)
            for op in ops:
                p(f"{op.name}: aggregates, flavors, image, external network")
                self.setup_operator(op)
            self.up_center()
            timings["start_seconds"] = time.monotonic() - t_start
            timings["up_seconds"] = time.monotonic() - t0
            self._write_state(timings)
            p("ready")
        return timings

    def _key(self, op: L.OperatorSpec, what: str) -> str:
        """A digest of what a step depends on (passwords, ports): the step reruns when it changes."""
        data = json.dumps([what, self.secrets[op.name].__dict__, op.ports, self.mariadb_port, self.rabbit_port])
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def _once(self, op: L.OperatorSpec, what: str, want: str, fn: Callable[[], None]) -> None:
        stamp = self.state(op) / f"dbsync-{what}.done"
        if stamp.exists() and stamp.read_text().strip() == want:
            return
        fn()
        stamp.write_text(want + "\n")

    def _assert_ports_ok(self) -> None:
        checks = [("mysqld", self.mariadb_port), ("rabbitmq", self.rabbit_port), ("epmd", self.epmd_port)]
        for op in self.layout.operators:
            checks += [(f"{op.name}/{s}", op.port(s)) for s in L.SERVICE_PORT_OFFSETS]
        checks.append((f"{L.CENTER}/keystone", self.center.port("keystone")))
        for name, port in checks:
            if not procs.running_pid(self.dir, name):
                self._ensure_port_free(port, name)

    def all_process_names(self) -> list[str]:
        """Every recorded process name (pid files), operators first in reverse start order, then shared."""
        pids = self.dir / "pids"
        names = []
        if pids.exists():
            for f in sorted(pids.rglob("*")):
                if f.is_file() and not f.name.endswith((".start", ".conf", ".argv")):
                    names.append(str(f.relative_to(pids)))
        order = {n: i for i, n in enumerate(["nova-compute", "cinder-volume", "cinder-scheduler", "nova-scheduler",
                                             "nova-conductor", "cinder_api", "neutron", "glance", "nova_api",
                                             "placement", "keystone"])}
        def key(n: str):
            if "/" in n:
                base = n.split("/", 1)[1]
                base = "nova-compute" if base.startswith("nova-compute") else base
                return (0, order.get(base, 99), n)
            return (1, {"rabbitmq": 0, "mysqld": 1, "epmd": 2}.get(n, 9), n)
        return sorted(names, key=key)

    def running_process_names(self) -> set[str]:
        return {n for n in self.all_process_names() if procs.running_pid(self.dir, n)}

    def down(self, only: set[str] | None = None) -> list[str]:
        """Stop what this devcloud started (by recorded PID, process group); ``only``: just these names.

        Returns what was stopped. Data (databases, images) stays for the next ``up``.
        """
        stopped: list[str] = []
        with dir_lock(self.dir, self.progress):
            names = [n for n in self.all_process_names() if only is None or n in only]
            op_names = [n for n in names if "/" in n]
            self.progress(f"stopping {len(op_names)} OpenStack processes")
            with cf.ThreadPoolExecutor(max_workers=8) as pool:
                for n, did in zip(op_names, pool.map(lambda n: procs.stop(self.dir, n), op_names), strict=True):
                    if did:
                        stopped.append(n)
            if "rabbitmq" in names and procs.running_pid(self.dir, "rabbitmq"):
                self.progress("stopping RabbitMQ")
                with contextlib.suppress(DevcloudFailed, OSError, KeyError):
                    _run([RABBITMQCTL, "stop"], self.dir / "logs" / "rabbitctl.log", env=self.rabbit_env(),
                         what="rabbitmqctl stop", timeout=60)
            for n in ("rabbitmq", "mysqld", "epmd"):
                if n not in names:
                    continue
                self.progress(f"stopping {n}")
                if procs.stop(self.dir, n, grace_seconds=30):
                    stopped.append(n)
        return stopped

    # ---- status
    def status(self) -> dict:
        """Per shared service and per operator process: up or down (+ pid, port, RSS)."""
        def entry(name: str, port: int | None = None, url: str | None = None) -> dict:
            pid = procs.running_pid(self.dir, name)
            up = pid is not None and (url is None or procs.http_ok(url, 5.0) or procs.http_ok(url, 10.0))
            return {"name": name.split("/")[-1], "up": up, "pid": pid, "port": port,
                    "rss_bytes": procs.group_rss_bytes(pid) if pid else 0,
                    "log": str(procs.log_file(self.dir, name))}
        shared = [entry("mysqld", self.mariadb_port), entry("rabbitmq", self.rabbit_port), entry("epmd", self.epmd_port)]
        operators = []
        for op in self.layout.operators:
            services = []
            for n in op.process_names():
                svc = n if n in L.SERVICE_PORT_OFFSETS else None
                port = op.port(svc) if svc else None
                url = (f"http://127.0.0.1:{port}/" + ("v3" if svc == "keystone" else "")) if port else None
                services.append(entry(f"{op.name}/{n}", port, url))
            operators.append({"operator": op.name, "auth_url": op.auth_url,
                              "up": all(s["up"] for s in services), "services": services})
        c = self.center
        center = {"auth_url": c.auth_url, "services": [
            entry(f"{c.name}/keystone", c.port("keystone"), f"http://127.0.0.1:{c.port('keystone')}/v3")]}
        center["up"] = center["services"][0]["up"]
        all_up = (bool(operators) and all(s["up"] for s in shared) and all(o["up"] for o in operators)
                  and center["up"])
        rss = (sum(s["rss_bytes"] for s in shared) + sum(s["rss_bytes"] for o in operators for s in o["services"])
               + center["services"][0]["rss_bytes"])
        return {"dir": str(self.dir), "clouds_file": str(self.layout.clouds_file), "up": all_up,
                "rss_bytes": rss, "shared": shared, "operators": operators, "center": center}

    def healthy(self) -> bool:
        st = self.status()
        return st["up"] and self.layout.clouds_file.exists()

    def env_lines(self) -> list[str]:
        return [f"export OS_CLIENT_CONFIG_FILE={self.layout.clouds_file}"]


def _person_project(person) -> str:
    """The Keystone project a person's roles are held on: dept-<department>, or center."""
    return L.DEPARTMENT_PROJECT_PREFIX + person.department if person.department else L.CENTER_PROJECT
