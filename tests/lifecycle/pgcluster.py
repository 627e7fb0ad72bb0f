"""A throw-away PostgreSQL cluster (Debian's postgresql binaries, initdb in a temp dir, a free port on
loopback), used by the lifecycle tests and by bench/lifecycle.py."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


class PostgresMissing(RuntimeError):
    pass


def pg_bindir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    # initdb/postgres refuse to run as root: run them as the Debian `postgres` user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def throwaway_cluster(*settings: str) -> Iterator[str]:
    """Yield the postgresql:// URL of a fresh cluster; ``settings`` are extra ``name=value`` server
    settings. Stopped by its own pg_ctl and removed on exit."""
    bindir = pg_bindir()
    if bindir is None:
        raise PostgresMissing("PostgreSQL server binaries missing: run `bash tools/system-deps.sh` "
                              "(Debian package postgresql)")
    base = tempfile.mkdtemp(prefix="yunshang-pg-")
    os.chmod(base, 0o755)
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    options = " ".join([f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", *(f"-c {s}" for s in settings)])
    try:
        subprocess.run(_as_pg_user([f"{bindir}/initdb", "-D", data, "-U", "yunshang", "--auth=trust",
                                    "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
        subprocess.run(_as_pg_user([f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(base, "server.log"), "-w",
                                    "-t", "60", "-o", options, "start"]), check=True, capture_output=True)
        yield f"postgresql://yunshang@127.0.0.1:{port}/postgres"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(_as_pg_user([f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
