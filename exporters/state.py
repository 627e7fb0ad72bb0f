"""The exporter's in-memory state: latest snapshot and health per operator, latest probe results.

Written by the background collectors, read by the metric collectors at render time. Every read
returns immutable records or copies, taken under one lock, so a render never sees half an update.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from yunshang.capacity import OperatorSnapshot


@dataclass(frozen=True)
class OperatorHealth:
    up: bool = False
    last_duration_seconds: float = 0.0
    last_success_unix: float | None = None
    errors_total: int = 0
    refreshes_total: int = 0
    last_error: str = ""          # for logs only; never exported (may name hosts)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    duration_seconds: float
    at_unix: float


class ExporterState:
    def __init__(self, operators: list[str]):
        self._lock = threading.Lock()
        self._snapshots: dict[str, OperatorSnapshot] = {}
        self._health: dict[str, OperatorHealth] = {op: OperatorHealth() for op in operators}
        self._probes: dict[str, ProbeResult] = {}
        self.render_errors_total = 0

    @property
    def operators(self) -> list[str]:
        return list(self._health)

    def update(self, snap: OperatorSnapshot) -> None:
        """Record one refresh. A failed refresh drops the operator's values (its ``up`` says why)."""
        with self._lock:
            h = self._health.get(snap.provider, OperatorHealth())
            h = replace(h, up=snap.ok, last_duration_seconds=snap.duration_seconds,
                        refreshes_total=h.refreshes_total + 1)
            if snap.ok:
                h = replace(h, last_success_unix=snap.taken_at.timestamp(), last_error="")
                self._snapshots[snap.provider] = snap
            else:
                h = replace(h, errors_total=h.errors_total + 1, last_error=snap.error)
                self._snapshots.pop(snap.provider, None)
            self._health[snap.provider] = h

    def snapshots(self) -> dict[str, OperatorSnapshot]:
        """Latest successful snapshot of each operator that is up."""
        with self._lock:
            return dict(self._snapshots)

    def health(self) -> dict[str, OperatorHealth]:
        with self._lock:
            return dict(self._health)

    def set_probe(self, key: str, result: ProbeResult) -> None:
        with self._lock:
            self._probes[key] = result

    def probes(self) -> dict[str, ProbeResult]:
        with self._lock:
            return dict(self._probes)
