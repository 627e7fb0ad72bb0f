"""Probe history persisted as monthly tallies in a small JSON state file.

Layout: ``{"version": 1, "months": {"2026-11": {"<target key>": [good, bad, excluded]}}}``.
Only the current and the previous month are kept. Writes are atomic (temp file + rename), so a
crash never leaves a half-written file; a restart resumes the month where it stopped.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading

from yunshang.errors import YunshangError
from yunshang.sla import ProbeTally, month_key


class ProbeStore:
    def __init__(self, path: str | None, tz: dt.tzinfo = dt.timezone.utc):
        self.path = path
        self.tz = tz
        self._lock = threading.Lock()
        self._months: dict[str, dict[str, list[int]]] = {}
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    doc = json.load(fh)
                months = doc["months"]
                assert isinstance(months, dict)
                self._months = {m: {k: [int(x) for x in v][:3] for k, v in t.items()} for m, t in months.items()}
            except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
                raise YunshangError(
                    f"{path}: probe state file unreadable ({type(exc).__name__}: {exc}); expected "
                    '{"version": 1, "months": {...}}; move it away to start the month afresh') from None

    def record(self, key: str, at: dt.datetime, ok: bool, in_maintenance: bool) -> ProbeTally:
        m = month_key(at, self.tz)
        with self._lock:
            cur = self._months.setdefault(m, {}).get(key, [0, 0, 0])
            new = ProbeTally(*cur).add(ok, in_maintenance)
            self._months[m][key] = [new.good, new.bad, new.excluded]
            return new

    def tally(self, key: str, at: dt.datetime) -> ProbeTally:
        with self._lock:
            return ProbeTally(*self._months.get(month_key(at, self.tz), {}).get(key, [0, 0, 0]))

    def save(self, now: dt.datetime) -> None:
        if not self.path:
            return
        keep = {month_key(now, self.tz)}
        first = now.astimezone(self.tz).replace(day=1) - dt.timedelta(days=1)
        keep.add(month_key(first, self.tz))
        with self._lock:
            self._months = {m: t for m, t in self._months.items() if m in keep}
            doc = {"version": 1, "months": self._months}
            data = json.dumps(doc, sort_keys=True)
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probes-", dir=d)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
