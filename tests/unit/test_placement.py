"""Placement: one table row per hard constraint (breaking it must unplace, with the named reason),
the objective, determinism, the JSON shape, and the bundled sample."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path

import pytest

from catalog_fixtures import DAY, catalog, contract, department, provider, request, template
from yunshang.catalog import load_catalog
from yunshang.model import Usage
from yunshang.placement import place, place_explained, plan_to_dict

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefecture"
TEL = provider("telecom")
GOV = provider("govcloud", zones=(("az1", 100, 400, 10000),), mlps=4, dedicated=True, prices=(42, 14, 0.8, 30))


def _one(cat, usage=(), excluded=None, day=DAY):
    return place(cat, day, usage, excluded=excluded)


def _reasons(plan, req, role="primary"):
    [u] = [u for u in plan.unplaced if u.request == req and u.role == role]
    return " | ".join(u.reasons)


# Each row: a catalog that breaks exactly one constraint; the request 'r' must be unplaced with the reason.
# The twin catalog (same but satisfying the constraint) must place it: the test fails if the rule is removed
# (the first half) or if the rule over-reaches (the second half).
ROWS = {
    "contract-expired": (
        catalog([TEL], [department("d", [contract("C1", "telecom", end=dt.date(2025, 12, 31))], [request("r")])]),
        catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r")])]),
        "expired on 2026-11-26"),
    "contract-not-started": (
        catalog([TEL], [department("d", [contract("C1", "telecom", start=dt.date(2027, 1, 1))], [request("r")])]),
        catalog([TEL], [department("d", [contract("C1", "telecom", start=dt.date(2026, 11, 26))], [request("r")])]),
        "not yet started"),
    "primary-needs-primary-contract": (
        catalog([TEL], [department("d", [contract("C1", "telecom", "backup")], [request("r")])]),
        catalog([TEL], [department("d", [contract("C1", "telecom", "primary")], [request("r")])]),
        "no primary contract"),
    "mlps-level": (
        catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", level=4)])]),
        catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", level=3)])]),
        "certified level 3 < required 4"),
    "secret-needs-dedicated": (
        catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", secret=True)])]),
        catalog([GOV], [department("d", [contract("C1", "govcloud")], [request("r", secret=True)])]),
        "not a dedicated operator"),
    "capacity-vcpu": (
        catalog([provider("telecom", zones=(("az1", 3, 400, 10000),))], [department("d", [contract("C1", "telecom")],
                                                                                    [request("r", 2)])]),
        catalog([provider("telecom", zones=(("az1", 4, 400, 10000),))], [department("d", [contract("C1", "telecom")],
                                                                                    [request("r", 2)])]),
        "vcpu free 3 of 3"),
    "capacity-ram": (
        catalog([provider("telecom", zones=(("az1", 100, 7, 10000),))], [department("d", [contract("C1", "telecom")],
                                                                                    [request("r", 2)])]),
        catalog([provider("telecom", zones=(("az1", 100, 8, 10000),))], [department("d", [contract("C1", "telecom")],
                                                                                    [request("r", 2)])]),
        "ram_gb free 7 of 7"),
    "capacity-disk": (
        catalog([provider("telecom", zones=(("az1", 100, 400, 99),))], [department("d", [contract("C1", "telecom")],
                                                                                   [request("r", 2)])]),
        catalog([provider("telecom", zones=(("az1", 100, 400, 100),))], [department("d", [contract("C1", "telecom")],
                                                                                    [request("r", 2)])]),
        "disk_gb free 99 of 99"),
    "capacity-overcommit": (
        catalog([provider("telecom", zones=(("az1", 2, 400, 10000),), overcommit=1.5)], [department("d", [contract("C1",
                                                                                                                   "telecom")],
                                                                                                    [request("r", 2)])]),
        catalog([provider("telecom", zones=(("az1", 2, 400, 10000),), overcommit=2.0)], [department("d", [contract("C1",
                                                                                                                   "telecom")],
                                                                                                    [request("r", 2)])]),
        "capacity on telecom"),
    "ha-spread": (   # az2 holds only one: 4 instances with ha need 2 + 2
        catalog([provider("telecom", zones=(("az1", 100, 400, 10000), ("az2", 2, 400, 10000)))],
                [department("d", [contract("C1", "telecom")], [request("r", 4, ha=True)])]),
        catalog([provider("telecom", zones=(("az1", 100, 400, 10000), ("az2", 2, 400, 10000)))],
                [department("d", [contract("C1", "telecom")], [request("r", 4, ha=False)])]),
        "ha: at most 2 per zone"),
    "ceiling": (
        catalog([TEL], [department("d", [contract("C1", "telecom", ceiling=249.5)], [request("r", 2)])]),
        catalog([TEL], [department("d", [contract("C1", "telecom", ceiling=250)], [request("r", 2)])]),
        "contract C1 ceiling 249.5 CNY/month: placing would make it 250"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_each_hard_constraint(name):
    broken, ok, reason = ROWS[name]
    plan = _one(broken)
    assert not plan.placements
    assert reason in _reasons(plan, "r")
    good = _one(ok)
    assert [p.request for p in good.placements] == ["r"] and not good.unplaced


def test_live_usage_is_subtracted():
    cat = catalog([provider("telecom", zones=(("az1", 10, 400, 10000),))],
                  [department("d", [contract("C1", "telecom")], [request("r", 2)])])
    assert _one(cat, usage=(Usage("telecom", "az1", vcpu=7),)).placements == ()
    assert "vcpu free 3 of 10" in _reasons(_one(cat, usage=(Usage("telecom", "az1", vcpu=7),)), "r")
    assert len(_one(cat, usage=(Usage("telecom", "az1", vcpu=6),)).placements) == 1


def test_excluded_operator_is_not_used_and_says_why():
    cat = catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r")])])
    plan = _one(cat, excluded={"telecom": "live capacity could not be read: timeout"})
    assert "telecom excluded: live capacity could not be read" in _reasons(plan, "r")


def test_standby_goes_to_a_backup_contract_on_another_operator():
    uni = provider("unicom", prices=(28, 12, 0.45, 20))
    cat = catalog([TEL, uni], [department("d", [contract("P", "telecom"), contract("B1", "telecom", "backup"),
                                                contract("B2", "unicom", "backup")], [request("r", 2, dr=True)])])
    plan = _one(cat)
    roles = {p.role: (p.provider, p.contract) for p in plan.placements}
    assert roles == {"primary": ("telecom", "P"), "standby": ("unicom", "B2")}


def test_standby_never_on_the_primary_operator():
    cat = catalog([TEL], [department("d", [contract("P", "telecom"), contract("B", "telecom", "backup")],
                                     [request("r", 2, dr=True)])])
    plan = _one(cat)
    assert [p.role for p in plan.placements] == ["primary"]
    assert "also hosts the primary copy" in _reasons(plan, "r", "standby")


def test_standby_not_placed_without_its_primary():
    uni = provider("unicom")
    cat = catalog([TEL, uni], [department("d", [contract("P", "telecom", ceiling=1), contract("B", "unicom", "backup")],
                                          [request("r", 1, dr=True)])])
    plan = _one(cat)
    assert plan.placements == () and "primary copy is not placed" in _reasons(plan, "r", "standby")


def test_whole_or_nothing():
    cat = catalog([provider("telecom", zones=(("az1", 8, 400, 10000),))],
                  [department("d", [contract("C1", "telecom")], [request("r", 5)])])    # room for 4
    plan = _one(cat)
    assert plan.placements == () and plan.total_monthly_cost_cny == 0
    assert all(u.vcpu_ratio == 0 for u in plan.utilization)


def test_cheapest_allowed_operator_wins_and_cost_is_the_price_formula():
    uni = provider("unicom", prices=(28, 12, 0.45, 20))
    cat = catalog([TEL, uni], [department("d", [contract("A", "telecom"), contract("B", "unicom")],
                                          [request("small", 3, size="small"), request("big", 2, size="large")])],
                  [template("web", floating_ips=1)])
    plan = _one(cat)
    got = {p.request: (p.provider, p.monthly_cost_cny) for p in plan.placements}
    # small 2/4/50 +1 fip: telecom 60+40+25+25=150, unicom 56+48+22.5+20=146.5 -> unicom
    # large 8/32/500 +1 fip: telecom 240+320+250+25=835, unicom 224+384+225+20=853 -> telecom
    assert got == {"small": ("unicom", 3 * 146.5), "big": ("telecom", 2 * 835.0)}
    assert plan.total_monthly_cost_cny == 3 * 146.5 + 2 * 835.0


def test_cheaper_operator_full_falls_back_and_explains():
    uni = provider("unicom", zones=(("az1", 2, 400, 10000),), prices=(1, 1, 0.1, 1))
    cat = catalog([TEL, uni], [department("d", [contract("A", "telecom"), contract("B", "unicom")], [request("r", 2)])])
    plan, decisions = place_explained(cat, DAY)
    assert plan.placements[0].provider == "telecom"
    assert "capacity on unicom" in decisions[0].why


def test_zones_balanced_for_lowest_peak():
    cat = catalog([provider("telecom", zones=(("az1", 100, 400, 10000), ("az2", 100, 400, 10000)))],
                  [department("d", [contract("C1", "telecom")], [request("r", 4)])])
    assert dict(_one(cat).placements[0].zones) == {"az1": 2, "az2": 2}
    usage = (Usage("telecom", "az1", vcpu=40),)   # az1 already busier: fill az2 first
    assert dict(_one(cat, usage=usage).placements[0].zones) == {"az1": 0, "az2": 4} or \
        dict(_one(cat, usage=usage).placements[0].zones) == {"az2": 4}


def test_ceiling_pressure_places_the_most_requests():
    # ceiling 1000: the big one (8 x 150 = 1200) cannot fit anyway; three small ones (150 each) must all be placed
    cat = catalog([TEL], [department("d", [contract("C1", "telecom", ceiling=1000)],
                                     [request("a"), request("b"), request("c"), request("big", 8)])],
                  [template("web", floating_ips=1)])
    plan = _one(cat)
    assert sorted(p.request for p in plan.placements) == ["a", "b", "c"]


def test_plan_to_dict_matches_the_issue_schema():
    uni = provider("unicom")
    cat = catalog([TEL, uni], [department("d", [contract("P", "telecom"), contract("B", "unicom", "backup")],
                                          [request("r", 2, ha=True, dr=True), request("x", level=4)])])
    data = plan_to_dict(_one(cat))
    json.dumps(data)
    assert set(data) == {"date", "placements", "unplaced", "utilization", "total_monthly_cost_cny"}
    assert data["date"] == "2026-11-26"
    assert set(data["placements"][0]) == {"department", "request", "role", "provider", "contract", "zones", "vcpu",
                                          "ram_gb", "disk_gb", "monthly_cost_cny", "site"}
    assert data["placements"][0]["zones"] == {"az1": 1, "az2": 1}
    assert set(data["unplaced"][0]) == {"department", "request", "role", "reasons"}
    assert set(data["utilization"][0]) == {"provider", "zone", "vcpu_ratio", "ram_gb_ratio", "disk_gb_ratio"}


def test_deterministic_and_independent_of_input_order():
    cat = load_catalog(SAMPLE)
    a = plan_to_dict(place(cat, DAY))
    assert a == plan_to_dict(place(cat, DAY))
    rng = random.Random(7)
    depts = list(cat.departments)
    rng.shuffle(depts)
    shuffled = dataclasses.replace(cat, departments=tuple(dataclasses.replace(
        d, requests=tuple(rng.sample(d.requests, len(d.requests)))) for d in depts))
    assert plan_to_dict(place(shuffled, DAY)) == a


def test_sample_places_mostly_with_instructive_exceptions():
    plan = place(load_catalog(SAMPLE), DAY)
    assert len(plan.placements) >= 90
    assert {(u.department, u.request, u.role) for u in plan.unplaced} == {
        ("market-regulation", "credit-analytics", "primary"), ("tourism", "ticketing", "standby")}
    later = place(load_catalog(SAMPLE), dt.date(2027, 2, 1))   # the tourism backup contract has started
    assert ("tourism", "ticketing", "standby") in {(p.department, p.request, p.role) for p in later.placements}


def test_primary_leaves_the_only_backup_operator_free_for_the_standby():
    # telecom is cheaper for the primary, but the only backup contract is with telecom:
    # the primary must go to unicom so that the standby copy can be placed at all.
    uni = provider("unicom", prices=(60, 20, 1, 50))
    cat = catalog([TEL, uni], [department("d", [contract("P1", "telecom"), contract("P2", "unicom"),
                                                contract("B", "telecom", "backup")], [request("r", 2, dr=True)])])
    plan = _one(cat)
    assert {p.role: p.provider for p in plan.placements} == {"primary": "unicom", "standby": "telecom"}


def test_primary_moves_when_the_standby_would_not_fit_elsewhere():
    # both operators are allowed for both roles; unicom has room for one copy only and is cheaper,
    # telecom for one copy only too: primary + standby must split, whichever way costs least.
    a = provider("telecom", zones=(("az1", 4, 400, 10000),))
    b = provider("unicom", zones=(("az1", 4, 400, 10000),), prices=(1, 1, 0.1, 1))
    cat = catalog([a, b], [department("d", [contract("P1", "telecom"), contract("P2", "unicom"),
                                            contract("B1", "telecom", "backup"), contract("B2", "unicom", "backup")],
                                      [request("r", 2, dr=True)])])
    plan = _one(cat)
    assert sorted((p.role, p.provider) for p in plan.placements) == [("primary", "unicom"), ("standby", "telecom")]


def test_repair_moves_a_role_to_make_room_for_one_that_has_no_other_way():
    # telecom has room for one instance. 'dp' comes first (name order on equal regret) and takes it;
    # 'dq' cannot use unicom (its unicom ceiling is 1 CNY). Moving dp to unicom places both.
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", prices=(60, 20, 1, 50))
    cat = catalog([tel, uni], [
        department("dp", [contract("PA", "telecom"), contract("PB", "unicom")], [request("p")]),
        department("dq", [contract("QA", "telecom"), contract("QB", "unicom", ceiling=1)], [request("q")])])
    plan = _one(cat)
    assert {p.department: p.provider for p in plan.placements} == {"dp": "unicom", "dq": "telecom"}
    assert plan.unplaced == ()
    # and dp's decision says why it is not on its cheaper operator (not "cheaper options had no room")
    why = {d.department: d.why for d in place_explained(cat, DAY)[1]}
    assert why["dp"].startswith("cheaper operator not possible: moved off telecom to make room for dq/q "
                                "(primary), which had no room anywhere (")


def test_a_primary_placed_by_the_repair_gets_its_standby():
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", prices=(60, 20, 1, 50))
    cat = catalog([tel, uni], [
        department("dp", [contract("PA", "telecom"), contract("PB", "unicom")], [request("p")]),
        department("dq", [contract("QA", "telecom"), contract("QB", "unicom", ceiling=1),
                          contract("QS", "unicom", "backup")], [request("q", dr=True)])])
    plan = _one(cat)
    assert sorted((p.department, p.role, p.provider) for p in plan.placements) == [
        ("dp", "primary", "unicom"), ("dq", "primary", "telecom"), ("dq", "standby", "unicom")]


def test_improvement_pass_puts_back_what_it_cannot_move():
    # the second role lands on the dearer unicom because telecom is full; the improvement pass
    # tries telecom again, fails, and must leave the books exactly as they were.
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", zones=(("az1", 4, 400, 10000),), prices=(60, 20, 1, 50))
    cat = catalog([tel, uni], [department("d", [contract("A", "telecom"), contract("B", "unicom")],
                                          [request("p"), request("q")])])
    plan = _one(cat)
    assert sorted(p.provider for p in plan.placements) == ["telecom", "unicom"]
    util = {(u.provider, u.zone): u.vcpu_ratio for u in plan.utilization}
    assert util == {("telecom", "az1"): 1.0, ("unicom", "az1"): 0.5}
