"""Processes the devcloud starts: each in its own session (setsid), its PID recorded.

A recorded PID counts as ours only while ``/proc/<pid>/environ`` still carries
``YUNSHANG_DEVCLOUD_OWNER=<dir>#<name>`` (set on every process at start), so a
reused PID is never mistaken for ours and nothing we did not start is ever killed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

OWNER_VAR = "YUNSHANG_DEVCLOUD_OWNER"


def owner_tag(devdir: Path, name: str) -> str:
    return f"{devdir}#{name}"


def pid_file(devdir: Path, name: str) -> Path:
    return devdir / "pids" / name


def log_file(devdir: Path, name: str) -> Path:
    """stdout+stderr of a process: ``logs/<name>.out`` (operator processes: ``logs/<op>/<proc>.out``)."""
    if "/" in name:
        op, proc = name.split("/", 1)
        return devdir / "logs" / op / f"{proc}.out"
    return devdir / "logs" / f"{name}.out"


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the PID it
    identifies one process for good, even after the PID is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def recorded_pid(devdir: Path, name: str) -> int | None:
    try:
        return int(pid_file(devdir, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(devdir: Path, name: str) -> int | None:
    """PID of process ``name`` if it is alive and is the very process this devcloud dir started, else None.

    The PID file holds ``<pid> <start ticks>``; both must match the live process. (Not the
    environment: gunicorn's setproctitle overwrites /proc/<pid>/environ.)
    """
    try:
        parts = pid_file(devdir, name).read_text().split()
        pid = int(parts[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(parts) >= 2:
        return pid if _start_ticks(pid) == parts[1] and _alive(pid) else None
    needle = f"{OWNER_VAR}={owner_tag(devdir, name)}".encode()   # older PID files: owner tag in environ
    return pid if _environ_has(pid, needle) else None


def start(devdir: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Start ``argv`` in a new session, output to its log file, PID to ``pids/<name>``."""
    out = log_file(devdir, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    pf = pid_file(devdir, name)
    pf.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    for k in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "PYTHONPATH", "VIRTUAL_ENV"):
        full_env.pop(k, None)
    full_env.update(env or {})
    full_env[OWNER_VAR] = owner_tag(devdir, name)
    with open(out, "ab") as fh:
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=full_env, start_new_session=True, close_fds=True)
    pf.write_text(f"{p.pid} {_start_ticks(p.pid)}\n")
    return p.pid


def stop(devdir: Path, name: str, grace_seconds: float = 10.0) -> bool:
    """Stop process group ``name`` if it is ours: SIGTERM, then SIGKILL after the grace period."""
    pid = running_pid(devdir, name)
    if pid is None:
        pid_file(devdir, name).unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.3)
    pid_file(devdir, name).unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)          # setsid: the group id is the leader's pid
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def group_rss_bytes(pid: int) -> int:
    """Resident memory of every process in session/group ``pid`` (from /proc)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            pgid, sid = int(fields[2]), int(fields[3])
            if pgid == pid or sid == pid:
                total += int((d / "statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout_seconds: float = 3.0) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as r:
            return r.status in (200, 300)
    except urllib.error.HTTPError as e:
        return e.code in (300,)
    except OSError:
        return False
