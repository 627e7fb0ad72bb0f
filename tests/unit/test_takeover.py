"""Takeover triggers and the move plan (pure)."""
from __future__ import annotations

import datetime as dt
import itertools
import os

from yunshang import takeover as t
from yunshang.catalog import load_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAT = load_catalog(os.path.join(ROOT, "examples", "prefecture"))
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 26, 12, tzinfo=UTC)


def series(*spans):
    """spans: (minutes_ago_start, minutes_ago_end, value) -> one sample a minute."""
    out = []
    for a, b, v in spans:
        for m in range(a, b, -1):
            out.append((NOW - dt.timedelta(minutes=m), v))
    return out


def test_down_seconds():
    assert t.down_seconds(series((60, 0, 1)), NOW) == 0.0
    assert t.down_seconds(series((60, 40, 1), (40, -1, 0)), NOW) == 40 * 60
    assert t.down_seconds(series((60, 30, 1)), NOW) is None            # exporter blind for 30 min


def test_operator_down_past_rto_fires_and_moves_everyone():
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((90, 45, 1), (45, -1, 0)), {})
    down = next(x for x in trig if x.name == "operator-down")
    assert down.fired and "45.0 min (RTO 30 min)" in down.detail
    assert t.departments_to_move(trig, ["health", "tourism"]) == ("health", "tourism")
    short = t.evaluate_triggers(CAT, "unicom", NOW, series((90, 10, 1), (10, -1, 0)), {})
    assert not any(x.fired for x in short)


def test_sla_breached_n_months_and_terminated_contracts():
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((10, 0, 1)), {"WJ-2025-01": [False, True, True]})
    assert next(x for x in trig if x.name == "sla-breached").fired
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((10, 0, 1)), {"WJ-2025-01": [True, False, True]})
    assert not next(x for x in trig if x.name == "sla-breached").fired
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((10, 0, 1)), {}, terminated=["WJ-2025-01"])
    term = [x for x in trig if x.name == "contract-terminated"]
    assert [(x.department, x.fired) for x in term] == [("health", True)]
    assert t.departments_to_move(trig, ["health", "tourism"]) == ("health",)


def test_move_plan_goes_to_the_backup_operator_in_order_with_capacity_and_data():
    affected = t.affected_from_catalog(CAT, "unicom", NOW.date())
    assert "health" in affected
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((90, 45, 1), (45, -1, 0)), {})
    plan = t.plan_takeover(CAT, "unicom", NOW, trig, affected)
    assert plan.triggered and [m.order for m in plan.moves] == list(range(1, len(plan.moves) + 1))
    health = next(m for m in plan.moves if m.department == "health")
    assert (health.to_operator, health.backup_contract) == ("telecom", "WJ-2025-02")
    hows = {d.request: d.how for d in health.data}
    assert hows["regional-his"] == "promote-standby"                   # dr: standby on telecom
    assert hows["health-portal"] in ("restore-from-backup", "none")
    levels = [m.mlps_level for m in plan.moves]
    assert levels == sorted(levels, reverse=True)
    assert all(b.done_after_seconds >= a.done_after_seconds for a, b in itertools.pairwise(plan.moves))
    no_backup = [m for m in plan.moves if not m.backup_contract]
    assert all(not m.capacity_ok and "no valid backup contract" in m.problems[0] for m in no_backup)


def test_capacity_check_on_the_backup_operator_refuses_when_full():
    from yunshang.model import Usage

    affected = {"health": t.affected_from_catalog(CAT, "unicom", NOW.date())["health"]}
    full = [Usage("telecom", z.name, z.capacity("vcpu"), z.capacity("ram_gb"), z.capacity("disk_gb"))
            for z in CAT.provider("telecom").zones]
    plan = t.plan_takeover(CAT, "unicom", NOW, (), affected, usage=full, force=True)
    [m] = plan.moves
    assert not m.capacity_ok and not m.within_rto and m.problems


def test_nothing_moves_without_a_trigger_unless_forced():
    affected = t.affected_from_catalog(CAT, "unicom", NOW.date())
    trig = t.evaluate_triggers(CAT, "unicom", NOW, series((10, 0, 1)), {})
    assert t.plan_takeover(CAT, "unicom", NOW, trig, affected).moves == ()
    assert len(t.plan_takeover(CAT, "unicom", NOW, trig, affected, force=True).moves) == len(affected)
