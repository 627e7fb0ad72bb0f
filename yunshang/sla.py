"""SLA math over probe results: pure functions over frozen data, no I/O.

How availability is counted
---------------------------
A synthetic probe runs every few seconds against a target (an operator's API
endpoint or a department's published service). Each result is a
``ProbeSample`` (when, ok?). Over one **calendar month** (``month_bounds``;
UTC unless a ``tzinfo`` is given) the samples fall in three bins:

* ``good``      the probe succeeded;
* ``bad``       the probe failed;
* ``excluded``  the sample was taken inside a declared ``MaintenanceWindow``
  of the operator: it counts neither for nor against the SLA.

``availability_ratio = good / (good + bad)``; with no counted sample the
ratio is 1.0 (no evidence of downtime). Samples are taken on a fixed
interval, so a sample ratio is a time ratio; gaps (the exporter itself down)
are not counted either way.

``ProbeTally`` is the small, persistable form of a month of samples: the
exporter keeps one tally per (target, month) in its state file so that a
restart does not reset the month. ``tally_samples`` builds the same tally
from a list of samples (both paths agree; see the unit tests).

Error budget, burn rate, credits
--------------------------------
* ``error_budget_ratio(target)``       = 1 - target (the failure ratio allowed).
* ``error_budget_remaining_ratio``     = 1 - failure_ratio / budget; 1.0 untouched,
  0.0 exactly spent, negative when overspent (not clamped, so dashboards show by how much).
* ``burn_rate(failure_ratio, target)`` = failure_ratio / budget; 1.0 spends the
  budget exactly over the period, 14.4 spends a 30-day budget in ~2 days.
* ``service_credit_ratio``             the contract's credit tier that applies:
  the largest ``credit_ratio`` among ``SlaCredit`` tiers whose ``below`` the
  availability falls under; ``service_credit_cny`` applies it to a bill.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from yunshang.model import MaintenanceWindow, SlaCredit


@dataclass(frozen=True)
class ProbeSample:
    """One probe result. ``at`` must be timezone-aware."""

    at: dt.datetime
    ok: bool


@dataclass(frozen=True)
class ProbeTally:
    """Counts of one target's samples in one calendar month."""

    good: int = 0
    bad: int = 0
    excluded: int = 0

    @property
    def counted(self) -> int:
        return self.good + self.bad

    def add(self, ok: bool, in_maintenance: bool) -> "ProbeTally":
        """The tally after one more sample."""
        if in_maintenance:
            return ProbeTally(self.good, self.bad, self.excluded + 1)
        if ok:
            return ProbeTally(self.good + 1, self.bad, self.excluded)
        return ProbeTally(self.good, self.bad + 1, self.excluded)

    def merged(self, other: "ProbeTally") -> "ProbeTally":
        return ProbeTally(self.good + other.good, self.bad + other.bad, self.excluded + other.excluded)


def _aware(at: dt.datetime, what: str) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {at.isoformat()})")
    return at


def month_bounds(at: dt.datetime, tz: dt.tzinfo = dt.timezone.utc) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month containing ``at``, in ``tz``."""
    local = _aware(at, "at").astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def month_key(at: dt.datetime, tz: dt.tzinfo = dt.timezone.utc) -> str:
    """``YYYY-MM`` of the calendar month containing ``at`` (the state file's key)."""
    start, _ = month_bounds(at, tz)
    return f"{start.year:04d}-{start.month:02d}"


def in_maintenance(at: dt.datetime, windows: Iterable[MaintenanceWindow]) -> bool:
    """True when ``at`` lies in a declared window ([start, end), naive times read as UTC)."""
    at = _aware(at, "at")
    for w in windows:
        start = w.start if w.start.tzinfo else w.start.replace(tzinfo=dt.timezone.utc)
        end = w.end if w.end.tzinfo else w.end.replace(tzinfo=dt.timezone.utc)
        if start <= at < end:
            return True
    return False


def maintenance_seconds_in_month(windows: Iterable[MaintenanceWindow], at: dt.datetime,
                                 tz: dt.tzinfo = dt.timezone.utc) -> float:
    """Seconds of declared maintenance inside the calendar month of ``at`` (overlaps merged)."""
    m_start, m_end = month_bounds(at, tz)
    spans = []
    for w in windows:
        s = w.start if w.start.tzinfo else w.start.replace(tzinfo=dt.timezone.utc)
        e = w.end if w.end.tzinfo else w.end.replace(tzinfo=dt.timezone.utc)
        s, e = max(s, m_start), min(e, m_end)
        if s < e:
            spans.append((s, e))
    total = 0.0
    cur: tuple[dt.datetime, dt.datetime] | None = None     # the merged span being extended
    for s, e in sorted(spans):
        if cur is None or s > cur[1]:
            if cur is not None:
                total += (cur[1] - cur[0]).total_seconds()
            cur = (s, e)
        else:
            cur = (cur[0], max(cur[1], e))
    if cur is not None:
        total += (cur[1] - cur[0]).total_seconds()
    return total


def tally_samples(samples: Iterable[ProbeSample], windows: Sequence[MaintenanceWindow], month_of: dt.datetime,
                  tz: dt.tzinfo = dt.timezone.utc) -> ProbeTally:
    """Tally the samples that fall in the calendar month of ``month_of``; maintenance excluded."""
    start, end = month_bounds(month_of, tz)
    tally = ProbeTally()
    for s in samples:
        if start <= _aware(s.at, "sample time") < end:
            tally = tally.add(s.ok, in_maintenance(s.at, windows))
    return tally


def availability_ratio(tally: ProbeTally) -> float:
    """good / (good + bad); 1.0 when nothing was counted (no evidence of downtime)."""
    return 1.0 if tally.counted == 0 else tally.good / tally.counted


def _check_target(target_ratio: float) -> None:
    if not 0.0 < target_ratio <= 1.0:
        raise ValueError(f"SLA target must be in (0, 1], got {target_ratio!r}")


def error_budget_ratio(target_ratio: float) -> float:
    """The failure ratio the target allows: 1 - target (0.0005 for 99.95 %)."""
    _check_target(target_ratio)
    return 1.0 - target_ratio


def burn_rate(failure_ratio: float, target_ratio: float) -> float:
    """How fast the budget burns: failure_ratio / (1 - target). 1.0 = exactly on budget.

    A target of 1.0 has no budget: any failure is an infinite burn, reported as ``inf``.
    """
    budget = error_budget_ratio(target_ratio)
    if budget == 0.0:
        return 0.0 if failure_ratio <= 0.0 else float("inf")
    return failure_ratio / budget


def error_budget_remaining_ratio(availability: float, target_ratio: float) -> float:
    """Share of the month's error budget left: 1 - (1 - availability) / (1 - target).

    1.0 nothing spent, 0.0 exactly spent, negative = overspent (not clamped). A 100 %
    target has no budget: 1.0 while availability is 1.0, else 0.0.
    """
    budget = error_budget_ratio(target_ratio)
    failure = max(0.0, 1.0 - availability)
    if budget == 0.0:
        return 1.0 if failure == 0.0 else 0.0
    return 1.0 - failure / budget


def sla_breached(availability: float, target_ratio: float) -> bool:
    """True when the month's availability is below the contract's target."""
    _check_target(target_ratio)
    return availability < target_ratio


def service_credit_ratio(availability: float, credits: Iterable[SlaCredit]) -> float:
    """The credit owed as a share of the monthly bill: the largest tier whose ``below`` is not met."""
    owed = [c.credit_ratio for c in credits if availability < c.below]
    return max(owed, default=0.0)


def service_credit_cny(availability: float, credits: Iterable[SlaCredit], monthly_bill_cny: float) -> float:
    """Service credit in yuan for a month billed ``monthly_bill_cny`` at ``availability``."""
    return round(monthly_bill_cny * service_credit_ratio(availability, credits), 2)
