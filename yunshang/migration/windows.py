"""Weekly maintenance windows: parse, intersect, find the next opening (pure).

Syntax (times in the prefecture's local time, the clock the plan is given)::

    any                              the whole week
    daily 01:00-05:00
    weekdays 22:00-06:00             wraps past midnight into the next day
    sat,sun 00:00-24:00
    mon-fri 20:00-23:00; sun 02:00-04:00     several clauses

A window is a sorted tuple of half-open ``[start, end)`` minute-of-week
intervals (Monday 00:00 = 0, one week = 10080 minutes).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

WEEK_MINUTES = 7 * 24 * 60
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLAUSE = re.compile(r"^(?P<days>[a-z,\-]+)\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$")


@dataclass(frozen=True)
class WeeklyWindow:
    intervals: tuple[tuple[int, int], ...]

    @property
    def empty(self) -> bool:
        return not self.intervals

    @property
    def minutes(self) -> int:
        return sum(e - s for s, e in self.intervals)

    def contains(self, when: dt.datetime) -> bool:
        m = minute_of_week(when)
        return any(s <= m < e for s, e in self.intervals)


ANY = WeeklyWindow(((0, WEEK_MINUTES),))


def minute_of_week(when: dt.datetime) -> int:
    return when.weekday() * 1440 + when.hour * 60 + when.minute


def _days(spec: str) -> list[int]:
    if spec == "daily":
        return list(range(7))
    if spec == "weekdays":
        return list(range(5))
    if spec == "weekends":
        return [5, 6]
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in DAYS or b not in DAYS:
                raise ValueError(part)
            i, j = DAYS.index(a), DAYS.index(b)
            out += list(range(i, j + 1)) if i <= j else list(range(i, 7)) + list(range(0, j + 1))
        else:
            if part not in DAYS:
                raise ValueError(part)
            out.append(DAYS.index(part))
    return out


def parse_window(text: str) -> WeeklyWindow:
    """Parse a window spec; ``ValueError`` says what was expected."""
    spec = " ".join(str(text).strip().lower().split())
    if spec in ("", "any", "always"):
        return ANY
    intervals: list[tuple[int, int]] = []
    for clause in (c.strip() for c in spec.split(";")):
        m = _CLAUSE.match(clause)
        try:
            if not m:
                raise ValueError(clause)
            days = _days(m["days"])
            h1, m1, h2, m2 = int(m["h1"]), int(m["m1"]), int(m["h2"]), int(m["m2"])
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
                raise ValueError(clause)
        except ValueError:
            raise ValueError(
                f"{text!r}: expected 'any' or '<days> HH:MM-HH:MM' (days: daily, weekdays, weekends, "
                f"mon..sun, mon-fri, sat,sun), clauses separated by ';'") from None
        start, end = h1 * 60 + m1, h2 * 60 + m2
        length = (end - start) % 1440 or 1440
        for d in days:
            s = d * 1440 + start
            e = s + length
            if e <= WEEK_MINUTES:
                intervals.append((s, e))
            else:
                intervals += [(s, WEEK_MINUTES), (0, e - WEEK_MINUTES)]
    return WeeklyWindow(_merge(intervals))


def _merge(intervals: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return tuple((s, e) for s, e in out)


def intersect(a: WeeklyWindow, b: WeeklyWindow) -> WeeklyWindow:
    out = []
    for s1, e1 in a.intervals:
        for s2, e2 in b.intervals:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return WeeklyWindow(_merge(out))


def _openings(w: WeeklyWindow) -> list[tuple[int, int]]:
    """Intervals with the week wrap joined (sun 23:00-24:00 + mon 00:00-01:00 is one opening)."""
    iv = list(w.intervals)
    if len(iv) > 1 and iv[0][0] == 0 and iv[-1][1] == WEEK_MINUTES:
        first = iv.pop(0)
        last = iv.pop()
        iv.append((last[0], WEEK_MINUTES + first[1]))
    return iv


def next_opening(w: WeeklyWindow, after: dt.datetime, min_minutes: int = 1) -> dt.datetime | None:
    """Earliest moment >= ``after`` (minute precision) with ``min_minutes`` of window ahead, or None."""
    if w.empty:
        return None
    if w == ANY:
        return after.replace(second=0, microsecond=0)
    base = after.replace(second=0, microsecond=0)
    m0 = minute_of_week(base)
    week_start = base - dt.timedelta(minutes=m0)
    best: dt.datetime | None = None
    for s, e in _openings(w):
        if e - s < min_minutes:
            continue
        for k in (-1, 0, 1):  # the opening in the previous, this and the next week
            s_abs, e_abs = s + k * WEEK_MINUTES, e + k * WEEK_MINUTES
            start = max(s_abs, m0)
            if e_abs - start >= min_minutes:
                cand = week_start + dt.timedelta(minutes=start)
                if best is None or cand < best:
                    best = cand
    return best


def describe(w: WeeklyWindow) -> str:
    if w == ANY:
        return "any"
    if w.empty:
        return "never"
    parts = []
    for s, e in _openings(w):
        d1, t1 = divmod(s % WEEK_MINUTES, 1440)
        d2, t2 = divmod(e % WEEK_MINUTES, 1440)
        parts.append(f"{DAYS[d1]} {t1 // 60:02d}:{t1 % 60:02d}-{DAYS[d2] if d2 != d1 else ''}"
                     f"{' ' if d2 != d1 else ''}{t2 // 60:02d}:{t2 % 60:02d}")
    return "; ".join(parts)
