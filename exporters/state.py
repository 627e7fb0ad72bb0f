"""The exporter's in-memory state: latest snapshot and health per operator, latest probe results.

Written by the background collectors, read by the metric collectors at render time. Every read
returns immutable records or copies, taken under one lock, so a render never sees half an update.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from yunshang.capacity import FAMILIES, FamilyRead, OperatorSnapshot

# Upper bounds (seconds) of the OpenStack API call latency histogram.
API_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class OperatorHealth:
    up: bool = False
    last_duration_seconds: float = 0.0
    last_success_unix: float | None = None
    errors_total: int = 0
    refreshes_total: int = 0
    last_error: str = ""          # for logs only; never exported (may name hosts)


@dataclass
class ApiStats:
    """OpenStack API calls of one (operator, service) since start: a counter pair and a histogram."""

    calls_total: int = 0
    errors_total: int = 0
    seconds_sum: float = 0.0
    bucket_counts: list[int] | None = None     # per API_BUCKETS_SECONDS bound, not cumulative; + one for +Inf

    def copy(self) -> "ApiStats":
        return ApiStats(self.calls_total, self.errors_total, self.seconds_sum, list(self.bucket_counts or []))


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
        self._families: dict[str, tuple[FamilyRead, ...]] = {}
        self._api: dict[tuple[str, str], ApiStats] = {}
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
            if snap.families:
                self._families[snap.provider] = snap.families
            else:                 # a reader without families: all read, or all failed
                at = snap.taken_at if snap.ok else None
                prev = {f.family: f for f in self._families.get(snap.provider, ())}
                self._families[snap.provider] = tuple(
                    FamilyRead(f, snap.ok, snap.error, at if snap.ok else (prev[f].read_at if f in prev else None))
                    for f in FAMILIES)
            for call in snap.api_calls:
                st = self._api.setdefault((snap.provider, call.service), ApiStats())
                if st.bucket_counts is None:
                    st.bucket_counts = [0] * (len(API_BUCKETS_SECONDS) + 1)
                st.calls_total += 1
                st.errors_total += 0 if call.ok else 1
                st.seconds_sum += call.seconds
                i = next((k for k, b in enumerate(API_BUCKETS_SECONDS) if call.seconds <= b), len(API_BUCKETS_SECONDS))
                st.bucket_counts[i] += 1

    def snapshots(self) -> dict[str, OperatorSnapshot]:
        """Latest successful snapshot of each operator that is up."""
        with self._lock:
            return dict(self._snapshots)

    def health(self) -> dict[str, OperatorHealth]:
        with self._lock:
            return dict(self._health)

    def families(self) -> dict[str, tuple[FamilyRead, ...]]:
        """Per operator, how each family fared in its latest refresh and when its data was read."""
        with self._lock:
            return dict(self._families)

    def api_stats(self) -> dict[tuple[str, str], ApiStats]:
        """(operator, service) -> API call counters since start (copies)."""
        with self._lock:
            return {k: v.copy() for k, v in self._api.items()}

    def set_probe(self, key: str, result: ProbeResult) -> None:
        with self._lock:
            self._probes[key] = result

    def probes(self) -> dict[str, ProbeResult]:
        with self._lock:
            return dict(self._probes)
