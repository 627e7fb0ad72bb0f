"""Real source servers for the migration tests: one sshd per host on 127.0.0.N:2222.

Each sshd runs under ``unshare --mount --uts --propagation private`` with a
private tmpfs on /run, its own hostname, and its own /srv (a bind mount of the
host's directory), so every host has the same paths with different data, as
real servers would. Key auth only; keys are generated per test session.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

SSHD = "/usr/sbin/sshd"
DEPARTMENT = "mtest"              # the destination tenant of the tests: dept-mtest on telecom
PROJECT = f"dept-{DEPARTMENT}"
OPERATOR = "telecom"
PORT = 2222


@dataclass
class SshHost:
    name: str
    address: str
    port: int
    root: str                    # what the host sees as /srv
    pid: int = 0

    def stop(self) -> None:
        if self.pid:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.pid = 0


def missing_tools() -> list[str]:
    return [t for t in (SSHD, "unshare", "rsync", "qemu-img", "ssh-keygen") if not shutil.which(t)]


def make_key(directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, "id_ed25519")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "yunshang-migration-test", "-f", key],
                       check=True)
    return key


def start_host(name: str, index: int, workdir: str, key: str, port: int = PORT) -> SshHost:
    """Start host ``name`` on 127.0.0.<index>; its /srv is ``workdir/<name>/srv``."""
    hdir = os.path.join(workdir, name)
    srv = os.path.join(hdir, "srv")
    os.makedirs(srv, exist_ok=True)
    hostkey = os.path.join(hdir, "ssh_host_ed25519_key")
    if not os.path.exists(hostkey):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey], check=True)
    shutil.copyfile(key + ".pub", os.path.join(hdir, "authorized_keys"))
    address = f"127.0.0.{index}"
    cfg = os.path.join(hdir, "sshd_config")
    with open(cfg, "w") as fh:
        fh.write(f"""ListenAddress {address}:{port}
HostKey {hostkey}
PidFile /run/sshd.pid
AuthorizedKeysFile {hdir}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
""")
    script = (f"mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && hostname {name} "
              f"&& mount --bind {srv} /srv && exec {SSHD} -D -e -f {cfg}")
    log = open(os.path.join(hdir, "sshd.log"), "ab")
    proc = subprocess.Popen(["unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", script],
                            stdout=log, stderr=log, start_new_session=True)
    host = SshHost(name=name, address=address, port=port, root=srv, pid=proc.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd for {name} exited: {open(os.path.join(hdir, 'sshd.log')).read()[-500:]}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return host
        except OSError:
            time.sleep(0.05)
    host.stop()
    raise RuntimeError(f"sshd for {name} did not listen on {address}:{port}")


def seed_host(host: SshHost, data_files: int = 20, file_bytes: int = 64 * 1024, disk_mb: int = 16, seed: int = 0) -> None:
    """Real data under /srv/app/{data,conf} and a real raw disk image /srv/images/root.raw."""
    import random

    rnd = random.Random(f"{host.name}-{seed}")
    for sub, n in (("app/data", data_files), ("app/conf", 3)):
        d = os.path.join(host.root, sub)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as fh:
                fh.write(rnd.randbytes(file_bytes))
    os.makedirs(os.path.join(host.root, "app/data/nested/deeper"), exist_ok=True)
    with open(os.path.join(host.root, "app/data/nested/deeper/records.csv"), "w") as fh:
        fh.write("\n".join(f"{i},{host.name},{rnd.random()}" for i in range(200)))
    img = os.path.join(host.root, "images", "root.raw")
    os.makedirs(os.path.dirname(img), exist_ok=True)
    if not os.path.exists(img):
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", img, f"{disk_mb}M"], check=True)
        with open(img, "r+b") as fh:   # a "boot sector" and some blocks of content
            fh.write(rnd.randbytes(512))
            fh.seek(disk_mb * 1024 * 1024 // 2)
            fh.write(rnd.randbytes(256 * 1024))


def survey_rows(hosts: list[SshHost], deps: dict[str, list[str]], department: str, operator: str,
                extra: dict[str, dict] | None = None) -> list[dict]:
    rows = []
    for h in hosts:
        row = {"hostname": h.name, "address": h.address, "ssh_user": "root", "ssh_port": h.port, "os": "debian12",
               "vcpu": 1, "ram_gb": 0.5, "disk_gb": 1, "data_paths": ["/srv/app/data", "/srv/app/conf"],
               "disk_image": "/srv/images/root.raw",
               "services": [{"name": "ssh", "port": 22, "check": "tcp"}],
               "business_system": "records", "depends_on": deps.get(h.name, []), "maintenance_window": "any",
               "department": department, "operator": operator}
        row.update((extra or {}).get(h.name, {}))
        rows.append(row)
    return rows


def tree_sha256(root: str) -> dict[str, str]:
    """{path relative to root: sha256} of every file below root."""
    import hashlib

    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out
