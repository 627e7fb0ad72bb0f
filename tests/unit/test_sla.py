"""yunshang.sla: table-driven tests of the pure SLA math."""
from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, strategies as st

from yunshang import sla
from yunshang.model import MaintenanceWindow, SlaCredit

UTC = dt.timezone.utc
CST = dt.timezone(dt.timedelta(hours=8))


def t(day, hour=0, minute=0, month=11, year=2026, tz=UTC):
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize("at, tz, start, end", [
    (t(26, 13), UTC, t(1), t(1, month=12)),
    (t(31, 23, 59, month=12), UTC, t(1, month=12), t(1, month=1, year=2027)),
    (t(1, 0, 0, month=1, year=2027), UTC, t(1, month=1, year=2027), t(1, month=2, year=2027)),
    # 2026-11-30 20:00 UTC is already December 1st in Beijing
    (t(30, 20), CST, t(1, month=12, tz=CST), t(1, month=1, year=2027, tz=CST)),
    (t(15, month=2), UTC, t(1, month=2), t(1, month=3)),
])
def test_month_bounds(at, tz, start, end):
    assert sla.month_bounds(at, tz) == (start, end)


def test_month_key_and_naive_rejected():
    assert sla.month_key(t(26)) == "2026-11"
    assert sla.month_key(t(30, 20), CST) == "2026-12"
    with pytest.raises(ValueError, match="timezone-aware"):
        sla.month_bounds(dt.datetime(2026, 11, 26))


WINDOW = MaintenanceWindow(start=dt.datetime(2026, 11, 10, 2, 0), end=dt.datetime(2026, 11, 10, 4, 0), reason="upgrade")


@pytest.mark.parametrize("at, expected", [
    (t(10, 1, 59), False),
    (t(10, 2, 0), True),        # start inclusive
    (t(10, 3, 30), True),
    (t(10, 4, 0), False),       # end exclusive
    (t(10, 10, 0, tz=CST), True),   # 02:00 UTC seen from Beijing
])
def test_in_maintenance(at, expected):
    assert sla.in_maintenance(at, [WINDOW]) is expected


@pytest.mark.parametrize("windows, expected_seconds", [
    ([], 0.0),
    ([WINDOW], 7200.0),
    ([WINDOW, WINDOW], 7200.0),                                                  # duplicates merged
    ([WINDOW, MaintenanceWindow(dt.datetime(2026, 11, 10, 3), dt.datetime(2026, 11, 10, 5))], 3 * 3600.0),
    ([MaintenanceWindow(dt.datetime(2026, 10, 31, 23), dt.datetime(2026, 11, 1, 1))], 3600.0),  # clipped to month
    ([MaintenanceWindow(dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 2))], 0.0),
])
def test_maintenance_seconds_in_month(windows, expected_seconds):
    assert sla.maintenance_seconds_in_month(windows, t(26)) == expected_seconds


def _samples(spec):
    """spec: list of (day, hour, minute, ok)."""
    return [sla.ProbeSample(t(d, h, m), ok) for d, h, m, ok in spec]


@pytest.mark.parametrize("spec, good, bad, excluded", [
    ([], 0, 0, 0),
    ([(1, 0, 0, True), (2, 0, 0, True)], 2, 0, 0),
    ([(1, 0, 0, True), (2, 0, 0, False)], 1, 1, 0),
    ([(10, 2, 30, False), (10, 3, 0, False), (10, 5, 0, True)], 1, 0, 2),    # failures in maintenance excluded
    ([(10, 2, 30, False), (10, 4, 0, False)], 0, 1, 1),                     # 04:00 is after the window
])
def test_tally_samples(spec, good, bad, excluded):
    assert sla.tally_samples(_samples(spec), [WINDOW], t(26)) == sla.ProbeTally(good, bad, excluded)


def test_tally_ignores_other_months():
    samples = [sla.ProbeSample(t(31, 23, month=10), False), sla.ProbeSample(t(1, 0, month=12), False),
               sla.ProbeSample(t(15), True)]
    assert sla.tally_samples(samples, [], t(26)) == sla.ProbeTally(1, 0, 0)


@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 23), st.integers(0, 59), st.booleans()), max_size=60))
def test_incremental_tally_equals_batch_tally(spec):
    """The exporter's incremental path (ProbeTally.add) agrees with tally_samples."""
    samples = _samples(spec)
    inc = sla.ProbeTally()
    for s in samples:
        inc = inc.add(s.ok, sla.in_maintenance(s.at, [WINDOW]))
    assert inc == sla.tally_samples(samples, [WINDOW], t(26))
    assert inc.good + inc.bad + inc.excluded == len(samples)


@pytest.mark.parametrize("tally, expected", [
    (sla.ProbeTally(0, 0, 0), 1.0),
    (sla.ProbeTally(0, 0, 7), 1.0),
    (sla.ProbeTally(9995, 5, 100), 0.9995),
    (sla.ProbeTally(0, 3, 0), 0.0),
    (sla.ProbeTally(3, 1, 0), 0.75),
])
def test_availability_ratio(tally, expected):
    assert sla.availability_ratio(tally) == pytest.approx(expected)


@pytest.mark.parametrize("availability, target, remaining", [
    (1.0, 0.999, 1.0),
    (0.9995, 0.999, 0.5),
    (0.999, 0.999, 0.0),
    (0.998, 0.999, -1.0),       # overspent by one whole budget: not clamped
    (0.99975, 0.9995, 0.5),
    (1.0, 1.0, 1.0),            # no budget, none spent
    (0.9999, 1.0, 0.0),         # no budget, breached
])
def test_error_budget_remaining(availability, target, remaining):
    assert sla.error_budget_remaining_ratio(availability, target) == pytest.approx(remaining)


@pytest.mark.parametrize("failure, target, rate", [
    (0.0, 0.999, 0.0),
    (0.001, 0.999, 1.0),
    (0.0144, 0.999, 14.4),
    (0.006, 0.999, 6.0),
    (0.0, 1.0, 0.0),
    (0.01, 1.0, math.inf),
])
def test_burn_rate(failure, target, rate):
    assert sla.burn_rate(failure, target) == pytest.approx(rate)


@pytest.mark.parametrize("bad_target", [0.0, -0.1, 1.5])
def test_target_out_of_range(bad_target):
    with pytest.raises(ValueError, match="SLA target"):
        sla.error_budget_ratio(bad_target)


@pytest.mark.parametrize("availability, target, breached", [
    (0.9995, 0.9995, False), (0.99949, 0.9995, True), (1.0, 0.99, False)])
def test_sla_breached(availability, target, breached):
    assert sla.sla_breached(availability, target) is breached


CREDITS = (SlaCredit(below=0.9995, credit_ratio=0.10), SlaCredit(below=0.999, credit_ratio=0.25),
           SlaCredit(below=0.99, credit_ratio=0.50))


@pytest.mark.parametrize("availability, ratio, cny", [
    (1.0, 0.0, 0.0),
    (0.9995, 0.0, 0.0),         # exactly on target: nothing owed
    (0.9994, 0.10, 1000.0),
    (0.9989, 0.25, 2500.0),
    (0.95, 0.50, 5000.0),       # largest applicable tier, whatever the order
])
def test_service_credit(availability, ratio, cny):
    assert sla.service_credit_ratio(availability, CREDITS) == ratio
    assert sla.service_credit_ratio(availability, tuple(reversed(CREDITS))) == ratio
    assert sla.service_credit_cny(availability, CREDITS, 10000.0) == cny


def test_no_credit_tiers():
    assert sla.service_credit_ratio(0.5, ()) == 0.0
