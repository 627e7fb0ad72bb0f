"""Quota admission: will this tenant fit on the operator right now?

Before either engine applies a tenant, ``admit()`` checks

* live capacity: per availability zone, what the spec's not-yet-existing
  servers need (vcpu, ram_gb, disk_gb) against Placement's free capacity
  ((total - reserved) x allocation_ratio - used), minus what other
  departments' admitted-but-unfinished applies have reserved;
* the department's own quota usage on that operator: what its project uses
  today plus what the apply adds must stay within the spec's quota (servers
  or volumes made by hand in the project count too).

Refusals raise ``QuotaExceeded`` naming zone, resource and by how much.

Concurrent applies on one operator are serialised by ``ReservationLedger``:
an exclusive ``fcntl`` lock on ``<state>/admission/<operator>.lock`` is held
while the live snapshot is read, the fit is checked and the reservation is
written, so two departments can never both be admitted against the same free
capacity. A reservation lives until the apply finishes (``release``) or its
TTL runs out (a crashed apply). Live usage of a running apply and its
reservation may both count for a while: admission errs on the side of refusing.

The core here is pure (``shortfalls``); the ledger does file I/O only (stdlib).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from yunshang.capacity import RESOURCE_CLASSES, OperatorSnapshot
from yunshang.errors import CloudUnavailable, QuotaExceeded
from yunshang.model import RESOURCES
from yunshang.tenant import TenantSpec

DEFAULT_TTL_SECONDS = 1800.0


def state_dir() -> Path:
    """Where yunshang keeps local state (admission ledgers, apply journals): $YUNSHANG_STATE_DIR
    or ~/.local/state/yunshang."""
    env = os.environ.get("YUNSHANG_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "state" / "yunshang"


@dataclass(frozen=True)
class Shortfall:
    scope: str                   # "zone az1" | "quota of dept-x"
    resource: str
    need: float
    available: float

    @property
    def short_by(self) -> float:
        return self.need - self.available

    def __str__(self) -> str:
        return (f"{self.scope}: {self.resource} needs {_n(self.need)}, {_n(self.available)} available "
                f"(short by {_n(self.short_by)})")


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def free_by_zone(snapshot: OperatorSnapshot) -> dict[str, dict[str, float]]:
    """Free schedulable capacity per zone in catalog units (vcpu, ram_gb, disk_gb)."""
    out: dict[str, dict[str, float]] = {}
    for z in snapshot.zones:
        if z.resource_class not in RESOURCE_CLASSES:
            continue
        res, div = RESOURCE_CLASSES[z.resource_class]
        out.setdefault(z.zone, {r: 0.0 for r in RESOURCES})[res] += z.free / div
    return out


def new_need_by_zone(spec: TenantSpec, existing_servers: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """What the servers of ``spec`` that do not exist yet need, per zone."""
    have = set(existing_servers)
    out: dict[str, dict[str, int]] = {}
    for s in spec.servers:
        if s.name in have:
            continue
        z = out.setdefault(s.availability_zone, {r: 0 for r in RESOURCES})
        z["vcpu"] += s.vcpu
        z["ram_gb"] += s.ram_gb
        z["disk_gb"] += s.disk_gb
    return dict(sorted(out.items()))


def shortfalls(spec: TenantSpec, snapshot: OperatorSnapshot, *, existing_servers: Iterable[str] = (),
               existing_volumes: Iterable[str] = (),
               reserved_by_others: Mapping[str, Mapping[str, float]] | None = None) -> tuple[Shortfall, ...]:
    """Everything that would not fit (empty: admitted). Pure."""
    existing_servers = set(existing_servers)
    need = new_need_by_zone(spec, existing_servers)
    free = free_by_zone(snapshot)
    reserved = reserved_by_others or {}
    out: list[Shortfall] = []
    for zone, res in need.items():
        if zone not in free:
            out.append(Shortfall(f"zone {zone}", "zone", 1, 0))
            continue
        for r in RESOURCES:
            if res[r] == 0:
                continue
            avail = free[zone][r] - float(reserved.get(zone, {}).get(r, 0.0))
            if res[r] > avail:
                out.append(Shortfall(f"zone {zone}", r, res[r], max(avail, 0.0)))
    # the department's own quota: in use today + what this apply adds <= the spec's quota
    new_servers = [s for s in spec.servers if s.name not in existing_servers]
    have_v = set(existing_volumes)
    new_volumes = [v for v in spec.volumes if v.name not in have_v]
    adds = {
        ("compute", "cores"): sum(s.vcpu for s in new_servers),
        ("compute", "ram"): sum(s.ram_gb for s in new_servers) * 1024,
        ("compute", "instances"): len(new_servers),
        ("volume", "gigabytes"): sum(v.size_gb for v in new_volumes),
        ("volume", "volumes"): len(new_volumes),
    }
    limits = spec.quotas.as_dict()
    in_use = {(q.service, q.resource): q.in_use for q in snapshot.quotas if q.department == spec.department}
    for (service, resource), add in adds.items():
        if not add or (service, resource) not in in_use:
            continue
        limit = limits[service][resource]
        if in_use[(service, resource)] + add > limit:
            out.append(Shortfall(f"quota of {spec.project.name}", f"{service}.{resource}",
                                 in_use[(service, resource)] + add, limit))
    return tuple(out)


def refusal(spec: TenantSpec, found: tuple[Shortfall, ...]) -> QuotaExceeded:
    return QuotaExceeded(f"tenant {spec.department} does not fit on {spec.operator}: "
                         + "; ".join(str(s) for s in found))


# --------------------------------------------------------------------------- the ledger
class ReservationLedger:
    """Per-operator reservations of admitted applies, guarded by an exclusive file lock."""

    def __init__(self, operator: str, directory: Path | None = None, *, clock: Callable[[], float] = time.time,
                 ttl_seconds: float = DEFAULT_TTL_SECONDS):
        self.operator = operator
        self.dir = Path(directory) if directory is not None else state_dir() / "admission"
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._held = False

    @property
    def path(self) -> Path:
        return self.dir / f"{self.operator}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator["ReservationLedger"]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{self.operator}.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            self._held = True
            try:
                yield self
            finally:
                self._held = False
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        now = self.clock()
        return {d: r for d, r in data.items() if r.get("expires_at", 0) > now}

    def _write(self, data: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".ledger-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def reservations(self) -> dict[str, dict]:
        return self._read()

    def reserved_by_others(self, department: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for d, r in self._read().items():
            if d == department:
                continue
            for zone, res in r["zones"].items():
                acc = out.setdefault(zone, {k: 0.0 for k in RESOURCES})
                for k in RESOURCES:
                    acc[k] += float(res.get(k, 0))
        return out

    def reserve(self, department: str, need: Mapping[str, Mapping[str, float]]) -> None:
        assert self._held, "reserve() only under locked()"
        data = self._read()
        data[department] = {"zones": {z: dict(v) for z, v in need.items()},
                            "expires_at": self.clock() + self.ttl_seconds}
        self._write(data)

    def release(self, department: str) -> None:
        with self.locked():
            data = self._read()
            if data.pop(department, None) is not None:
                self._write(data)


@dataclass(frozen=True)
class Admission:
    department: str
    operator: str
    reserved: Mapping[str, Mapping[str, int]]   # zone -> resource -> amount


def admit(spec: TenantSpec, read_snapshot: Callable[[], OperatorSnapshot], ledger: ReservationLedger | None, *,
          existing_servers: Iterable[str] = (), existing_volumes: Iterable[str] = ()) -> Admission:
    """Admit ``spec`` or raise QuotaExceeded. With a ledger, the read-check-reserve runs under the
    operator's exclusive lock; without one (``None``) nothing is serialised (single user only)."""
    existing_servers = tuple(existing_servers)
    ctx = ledger.locked() if ledger is not None else contextlib.nullcontext()
    with ctx:
        snap = read_snapshot()
        if not snap.ok:
            raise CloudUnavailable(f"operator {spec.operator}: cannot read capacity: {snap.error}")
        others = ledger.reserved_by_others(spec.department) if ledger is not None else {}
        found = shortfalls(spec, snap, existing_servers=existing_servers, existing_volumes=existing_volumes,
                           reserved_by_others=others)
        if found:
            raise refusal(spec, found)
        need = new_need_by_zone(spec, existing_servers)
        if ledger is not None and need:
            ledger.reserve(spec.department, need)
    return Admission(spec.department, spec.operator, need)
