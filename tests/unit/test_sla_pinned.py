"""SLA helpers pinned to exact values (mutation testing, docs/testing.md)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from yunshang import sla
from yunshang.model import MaintenanceWindow, SlaCredit

UTC = dt.timezone.utc
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)


def w(start_h, end_h):
    return MaintenanceWindow(NOV + dt.timedelta(hours=start_h), NOV + dt.timedelta(hours=end_h))


def test_maintenance_seconds_merge_overlaps_and_touching_windows_and_clip_to_the_month():
    assert sla.maintenance_seconds_in_month([w(1, 3), w(2, 4), w(10, 11)], NOV) == 4 * 3600
    assert sla.maintenance_seconds_in_month([w(1, 2), w(2, 3)], NOV) == 2 * 3600          # touching: one span
    assert sla.maintenance_seconds_in_month([w(-5, 1), w(719, 725)], NOV) == 2 * 3600     # clipped
    assert sla.maintenance_seconds_in_month([w(-5, 0), w(720, 725), w(5, 5)], NOV) == 0.0
    assert sla.maintenance_seconds_in_month([], NOV) == 0.0


def test_breach_needs_a_valid_target_and_credit_is_rounded_to_the_fen():
    with pytest.raises(ValueError):
        sla.sla_breached(0.5, 1.5)
    assert sla.service_credit_cny(0.998, (SlaCredit(0.999, 0.15),), 100.333) == 15.05


def test_samples_and_tallies_are_frozen():
    for obj in (sla.ProbeSample(NOV, True), sla.ProbeTally(1, 2, 3)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[0].name, None)
