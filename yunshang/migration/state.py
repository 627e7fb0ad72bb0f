"""Per-host, per-step migration state (pure transitions) and its atomic JSON store.

Steps run in this order for every host. A step is ``done`` only once its
playbook recorded it for that host, so a run killed mid-step re-runs that step
(all steps are idempotent) and never redoes a ``done`` one.

========= ===========================================================
discover  facts from the source host -> records/<host>/discover.json
precheck  the destination fits (run for the whole wave, before any copy)
sync      warm rsync of the data paths to staging, checksums compared
convert   the disk image copied to the conversion host, qemu-img -> qcow2
import    the qcow2 uploaded to the tenant's Glance, checksum compared
boot      server booted in the tenant (flavor, network, security groups)
verify    Glance checksum, server ACTIVE on network/flavor/project, data
cutover   final delta sync + checksums, the switch recorded
========= ===========================================================
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

from yunshang.errors import MigrationFailed

STEPS = ("discover", "precheck", "sync", "convert", "import", "boot", "verify", "cutover")
PLAYBOOKS = {
    "discover": "discover_hosts.yml",
    "precheck": "precheck_destination.yml",
    "sync": "sync_data.yml",
    "convert": "convert_disk.yml",
    "import": "import_image.yml",
    "boot": "boot_server.yml",
    "verify": "verify_server.yml",
    "cutover": "cutover_host.yml",
}
ROLLBACK_PLAYBOOK = "rollback_host.yml"
STEP_STATUSES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class StepState:
    status: str = "pending"
    attempts: int = 0
    started_at: str = ""
    finished_at: str = ""
    reason: str = ""


@dataclass(frozen=True)
class HostState:
    host: str
    wave: int
    steps: Mapping[str, StepState]
    rolled_back_at: str = ""

    def step(self, name: str) -> StepState:
        return self.steps.get(name, StepState())

    @property
    def status(self) -> str:
        """pending | in-progress | failed | migrated | rolled-back"""
        if self.rolled_back_at and all(s.status == "pending" for s in self.steps.values()):
            return "rolled-back"
        if any(s.status == "failed" for s in self.steps.values()):
            return "failed"
        if all(self.step(s).status == "done" for s in STEPS):
            return "migrated"
        if all(self.step(s).status == "pending" for s in STEPS):
            return "pending"
        return "in-progress"

    @property
    def next_step(self) -> str | None:
        for s in STEPS:
            if self.step(s).status != "done":
                return s
        return None

    @property
    def failure(self) -> str:
        for s in STEPS:
            if self.step(s).status == "failed":
                return f"{s}: {self.step(s).reason}"
        return ""


@dataclass(frozen=True)
class MigrationState:
    plan_id: str
    hosts: Mapping[str, HostState]

    def host(self, name: str) -> HostState:
        return self.hosts[name]


def _now(clock: dt.datetime | None) -> str:
    return (clock or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")


def new_state(plan: Any) -> MigrationState:
    hosts = {h: HostState(host=h, wave=w.number, steps=MappingProxyType({s: StepState() for s in STEPS}))
             for w in plan.waves for h in w.hosts}
    return MigrationState(plan_id=plan.plan_id, hosts=MappingProxyType(hosts))


def _with_step(state: MigrationState, host: str, step: str, new: StepState, **host_changes: Any) -> MigrationState:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    hs = state.hosts[host]
    steps = dict(hs.steps)
    steps[step] = new
    hosts = dict(state.hosts)
    hosts[host] = replace(hs, steps=MappingProxyType(steps), **host_changes)
    return replace(state, hosts=MappingProxyType(hosts))


def start_step(state: MigrationState, host: str, step: str, clock: dt.datetime | None = None) -> MigrationState:
    old = state.hosts[host].step(step)
    return _with_step(state, host, step, StepState("running", old.attempts + 1, _now(clock), "", ""))


def finish_step(state: MigrationState, host: str, step: str, ok: bool, reason: str = "",
                clock: dt.datetime | None = None) -> MigrationState:
    old = state.hosts[host].step(step)
    return _with_step(state, host, step, replace(old, status="done" if ok else "failed",
                                                 finished_at=_now(clock), reason=reason))


def reset_host(state: MigrationState, host: str, clock: dt.datetime | None = None) -> MigrationState:
    """After a rollback: every step back to pending (attempt counts kept), the rollback time recorded."""
    hs = state.hosts[host]
    steps = {s: StepState(attempts=hs.step(s).attempts) for s in STEPS}
    hosts = dict(state.hosts)
    hosts[host] = replace(hs, steps=MappingProxyType(steps), rolled_back_at=_now(clock))
    return replace(state, hosts=MappingProxyType(hosts))


def retry_failed(state: MigrationState, hosts: list[str] | tuple[str, ...]) -> MigrationState:
    """Failed (or interrupted ``running``) steps of these hosts become pending again; ``done`` stays done."""
    for h in hosts:
        for s in STEPS:
            st = state.hosts[h].step(s)
            if st.status in ("failed", "running"):
                state = _with_step(state, h, s, replace(st, status="pending"))
    return state


def runnable(state: MigrationState, plan: Any, wave: int, step: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Hosts of ``wave`` that still need ``step`` now, and hosts held back with the reason.

    A host needs ``step`` when every earlier step is done and this one is not.
    It is held back when a host it depends on is not migrated.
    """
    ready: list[str] = []
    held: list[tuple[str, str]] = []
    w = plan.waves[wave - 1]
    for h in w.hosts:
        hs = state.hosts[h]
        if hs.next_step != step or hs.step(step).status == "failed":
            continue
        blocking = [d for d in plan.survey.host(h).depends_on if state.hosts[d].status != "migrated"]
        if blocking:
            held.append((h, "waits for " + ", ".join(f"{d} ({state.hosts[d].status})" for d in blocking)))
            continue
        ready.append(h)
    return tuple(ready), tuple(held)


# --------------------------------------------------------------------------- persistence
def state_to_dict(state: MigrationState) -> dict[str, Any]:
    return {"plan_id": state.plan_id, "hosts": {
        h: {"wave": hs.wave, "rolled_back_at": hs.rolled_back_at,
            "steps": {s: vars(hs.step(s)) for s in STEPS}} for h, hs in sorted(state.hosts.items())}}


def state_from_dict(d: dict[str, Any]) -> MigrationState:
    hosts = {h: HostState(host=h, wave=int(v["wave"]), rolled_back_at=v.get("rolled_back_at", ""),
                          steps=MappingProxyType({s: StepState(**v["steps"].get(s, {})) for s in STEPS}))
             for h, v in d["hosts"].items()}
    return MigrationState(plan_id=d["plan_id"], hosts=MappingProxyType(hosts))


class StateStore:
    """``state.json`` in a run directory, replaced atomically (temp file + fsync + rename).

    ``lock()`` takes an exclusive flock for the life of a run; the kernel drops
    it when the process dies, so a killed run can be resumed at once.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.path = os.path.join(directory, "state.json")
        self._lock_fd: int | None = None

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def load(self) -> MigrationState:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return state_from_dict(json.load(fh))
        except FileNotFoundError:
            raise MigrationFailed(f"no migration state in {self.directory}: run `yunshang migrate run PLAN` first") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise MigrationFailed(f"{self.path}: unreadable migration state ({exc})") from None

    def save(self, state: MigrationState) -> None:
        write_json_atomic(self.path, state_to_dict(state))

    def lock(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(os.path.join(self.directory, "run.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MigrationFailed(f"another migration run holds {self.directory}/run.lock") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def write_json_atomic(path: str, data: Any) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
