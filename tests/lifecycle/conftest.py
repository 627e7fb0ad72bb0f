"""Fixtures for the lifecycle tests: a REAL PostgreSQL server (Debian's postgresql-15
binaries, our own cluster in a temp dir on a free port) and a SQLite file."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _pg_bindir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    # initdb/postgres refuse to run as root: run them as the Debian `postgres` user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql:// URL of a throw-away cluster; stopped (by its own pg_ctl) at session end."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries missing: run `bash tools/system-deps.sh` (Debian package postgresql)")
    base = tempfile.mkdtemp(prefix="yunshang-pg-")
    os.chmod(base, 0o755)
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres"); shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run(_as_pg_user([f"{bindir}/initdb", "-D", data, "-U", "yunshang", "--auth=trust",
                                "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
    log = os.path.join(base, "server.log")
    subprocess.run(_as_pg_user([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
                                f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                                f"-c max_connections=50", "start"]), check=True, capture_output=True)
    url = f"postgresql://yunshang@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run(_as_pg_user([f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


_db_counter = [0]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store URL on each backend (a new database per test on PostgreSQL)."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "lifecycle.db")
    import psycopg

    base = request.getfixturevalue("postgres_url")
    _db_counter[0] += 1
    name = f"t{os.getpid()}_{_db_counter[0]}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name
