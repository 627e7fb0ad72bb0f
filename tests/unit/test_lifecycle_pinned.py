"""The lifecycle's pure helpers pinned to exact values (what review reserves, what reclaim proposes,
what configure applies), and the state machine as a full table. Written against mutation testing
(docs/testing.md): each test fails when a comparison, a sum or a filter in lifecycle.py is off."""
from __future__ import annotations

import datetime as dt

import pytest

from catalog_fixtures import catalog, contract, department, provider, template
from yunshang import lifecycle as lc
from yunshang.errors import InputInvalid
from yunshang.model import Placement, Plan, Probe, Request, RequestDocument, Size, Usage
from yunshang.store import PlacementRow, RequestRecord

DAY = dt.date(2026, 11, 26)


def rec(i, state, rows=(), dept="mut-a", document=None):
    return RequestRecord(i, dept, "", state, document or {}, "", "", None, None, placements=tuple(rows))


def row(req="r", contract_id="C1", cost=100.0, *, role="primary", prov="telecom", zone="az1", n=1,
        vcpu=2.0, ram=4.0, disk=50.0, fips=1.0):
    return PlacementRow(req, role, prov, contract_id, zone, n, vcpu, ram, disk, fips, cost)


# --------------------------------------------------------------------------- the state machine
# (state, action) -> the state after it; every pair not listed is refused.
TABLE = {
    ("", "submit"): lc.SUBMITTED,
    (lc.SUBMITTED, "endorse"): lc.ENDORSED,
    (lc.SUBMITTED, "review"): lc.REVIEWED, (lc.ENDORSED, "review"): lc.REVIEWED, (lc.REVIEWED, "review"): lc.REVIEWED,
    (lc.REVIEWED, "approve-first"): lc.FIRST_APPROVED,
    (lc.REVIEWED, "approve"): lc.APPROVED, (lc.FIRST_APPROVED, "approve"): lc.APPROVED,
    (lc.SUBMITTED, "reject"): lc.REJECTED, (lc.ENDORSED, "reject"): lc.REJECTED, (lc.REVIEWED, "reject"): lc.REJECTED,
    (lc.FIRST_APPROVED, "reject"): lc.REJECTED,
    (lc.APPROVED, "configure"): lc.CONFIGURED, (lc.CONFIGURED, "configure"): lc.CONFIGURED,
    (lc.CONFIGURED, "publish"): lc.PUBLISHED,
    (lc.PUBLISHED, "monitor"): lc.MONITORED,
    (lc.CONFIGURED, "plan-reclaim"): lc.RECLAIM_PLANNED, (lc.PUBLISHED, "plan-reclaim"): lc.RECLAIM_PLANNED,
    (lc.MONITORED, "plan-reclaim"): lc.RECLAIM_PLANNED,
    (lc.RECLAIM_PLANNED, "keep"): lc.PUBLISHED,
    (lc.RECLAIM_PLANNED, "reclaim"): lc.RECLAIMED,
}
NEEDS_REASON = {"approve-first", "approve", "reject", "plan-reclaim", "keep", "reclaim"}


@pytest.mark.parametrize("state", ("",) + lc.STATES)
def test_every_state_action_pair_is_allowed_exactly_as_the_table_says(state):
    for action in lc.ACTIONS:
        want = TABLE.get((state, action))
        if want is None:
            with pytest.raises(lc.TransitionRefused, match=f"cannot {action} a request that is"):
                lc.transition(state, action, "li", "because")
        else:
            assert lc.transition(state, action, "li", "because") == want
    assert lc.allowed_actions(state) == tuple(a for a in lc.ACTIONS if (state, a) in TABLE)


def test_which_actions_need_a_reason():
    for (state, action), want in TABLE.items():
        if action in NEEDS_REASON:
            for blank in ("", "   "):
                with pytest.raises(lc.TransitionRefused, match=f"{action}: a reason is required"):
                    lc.transition(state, action, "li", blank)
        else:
            assert lc.transition(state, action, "li") == want
    assert {a.name for a in lc.ACTIONS.values() if a.reason_required} == NEEDS_REASON


def test_refusals_say_what_is_possible_and_name_a_new_request():
    with pytest.raises(lc.TransitionRefused) as e:
        lc.transition("", "review", "li")
    assert str(e.value) == "cannot review a request that is (new); possible now: submit"
    with pytest.raises(lc.TransitionRefused) as e:
        lc.transition(lc.RECLAIMED, "keep", "li", "x")
    assert str(e.value) == "cannot keep a request that is reclaimed; possible now: none (final state)"
    with pytest.raises(lc.TransitionRefused, match="who acts must be named"):
        lc.transition("", "submit", "")
    assert lc.TransitionRefused("x").exit_code == 3 and lc.CapacityExhausted("x").exit_code == 3


def test_the_lifecycle_records_are_frozen():
    import dataclasses

    for obj, field in ((lc.ACTIONS["approve"], "target"),
                       (lc.ReclaimCandidate(1, "mut-a", lc.PUBLISHED, (), {}), "state")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, "x")


def test_holding_and_billable_states():
    assert lc.HOLDING_STATES == {lc.APPROVED, lc.CONFIGURED, lc.PUBLISHED, lc.MONITORED, lc.RECLAIM_PLANNED}
    assert lc.BILLABLE_STATES == {lc.CONFIGURED, lc.PUBLISHED, lc.MONITORED, lc.RECLAIM_PLANNED}


# --------------------------------------------------------------------------- the document
def test_document_to_dict_exact():
    doc = RequestDocument("mut-a", "t", (Request("r", "web", "small", 2, 3, True, False, True),),
                          (Probe("p", "tcp", "10.0.0.1:80"), Probe("q", "http", "http://x/", "C9")), "ops@x")
    assert lc.document_to_dict(doc) == {
        "department": "mut-a", "title": "t", "contact": "ops@x",
        "requests": [{"name": "r", "template": "web", "size": "small", "count": 2, "mlps_level": 3,
                      "ha": True, "dr": False, "secret": True}],
        "probes": [{"name": "p", "kind": "tcp", "target": "10.0.0.1:80"},
                   {"name": "q", "kind": "http", "target": "http://x/", "contract": "C9"}]}


def _cat(level=3):
    return catalog([provider("telecom")], [department("mut-a", [contract("C1", "telecom")], [], level=level),
                                           department("mut-b", [contract("C2", "telecom")], [])],
                   [template("web", {"small": Size(2, 4, 50)})])


def test_validate_against_catalog_each_problem():
    cat = _cat(level=3)
    ok = RequestDocument("mut-a", "", (Request("r", "web", "small", 1, 3),))
    assert lc.validate_against_catalog(ok, cat) == []
    higher = RequestDocument("mut-a", "", (Request("r", "web", "small", 1, 4),))
    assert lc.validate_against_catalog(higher, cat) == []
    bad = RequestDocument("mut-a", "", (Request("r", "db", "small", 1, 3), Request("s", "web", "huge", 1, 2)))
    assert [(p.field, p.message) for p in lc.validate_against_catalog(bad, cat, "f.yaml")] == [
        ("requests[0].template", "unknown template 'db'; known: web"),
        ("requests[1].size", "template web has no size 'huge'; sizes: small"),
        ("requests[1].mlps_level", "2 is below the department's level 3")]
    unknown = RequestDocument("mut-z", "", ok.requests)
    [p] = lc.validate_against_catalog(unknown, cat, "f.yaml")
    assert (p.file, p.field, p.message) == ("f.yaml", "department", "unknown department 'mut-z'; known: mut-a, mut-b")


def test_parse_request_document_takes_the_level_from_the_catalog_or_the_default():
    entry = {"name": "r", "template": "web", "size": "small", "count": 1}
    doc = lc.parse_request_document({"department": "mut-a", "requests": [entry]}, "f", catalog=_cat(level=4))
    assert doc.requests[0].mlps_level == 4
    doc = lc.parse_request_document({"department": "mut-a", "requests": [entry]}, "f", default_mlps=2)
    assert doc.requests[0].mlps_level == 2
    with pytest.raises(InputInvalid, match="is not known"):
        lc.parse_request_document({"department": "mut-z", "requests": [entry]}, "f", catalog=_cat())


# --------------------------------------------------------------------------- review helpers
def test_catalog_for_review_takes_committed_cost_off_each_ceiling_never_below_zero():
    cat = catalog([provider("telecom")], [department("mut-a", [contract("C1", "telecom", ceiling=1000),
                                                               contract("C2", "telecom", "backup", ceiling=500),
                                                               contract("C3", "telecom", ceiling=80)], []),
                                          department("mut-b", [contract("C1", "telecom", ceiling=1000)], [])])
    doc = RequestDocument("mut-a", "", (Request("r", "web", "small", 1, 3),))
    out = lc.catalog_for_review(cat, doc, {"C1": 250.5, "C3": 100.0})
    [d] = out.departments
    assert d.name == "mut-a" and d.requests == doc.requests
    assert [(c.id, c.ceiling_cny_per_month) for c in d.contracts] == [("C1", 749.5), ("C2", 500.0), ("C3", 0.0)]
    assert out.providers == cat.providers and out.templates == cat.templates
    untouched = lc.catalog_for_review(cat, doc)
    assert [c.ceiling_cny_per_month for c in untouched.department("mut-a").contracts] == [1000, 500, 80]


def test_committed_cost_counts_holding_states_of_the_department_only():
    records = [rec(1, s, [row(cost=1.0 * (2 ** k))]) for k, s in enumerate(lc.STATES)]
    records += [rec(20, lc.APPROVED, [row(cost=1000.0)], dept="mut-b"),
                rec(21, lc.CONFIGURED, [row(cost=0.25), row("r2", "C2", 0.5, role="standby")])]
    got = lc.committed_cost_cny(records, "mut-a")
    holding = sum(2.0 ** k for k, s in enumerate(lc.STATES) if s in lc.HOLDING_STATES)
    assert got == {"C1": holding + 0.25, "C2": 0.5}
    # STATES: submitted endorsed reviewed first-approved approved(16) rejected configured(64) published(128)
    # monitored(256) reclaim-planned(512) reclaimed: the five holding ones
    assert holding == 16 + 64 + 128 + 256 + 512
    assert lc.committed_cost_cny(records, "mut-a", exclude_id=21) == {"C1": holding}
    assert lc.committed_cost_cny(records, "mut-c") == {}


def _placement(dept="mut-a", req="r", zones=(("az1", 1), ("az2", 3)), cost=400.0, **kw):
    base = dict(department=dept, request=req, role="primary", provider="telecom", contract="C1", zones=zones,
                vcpu=8, ram_gb=16, disk_gb=200, floating_ips=4, monthly_cost_cny=cost)
    base.update(kw)
    return Placement(**base)


def test_placement_rows_split_each_placement_by_zone_share():
    plan = Plan(DAY, (_placement(cost=400.03), _placement(dept="mut-b"),
                      _placement(req="s", role="standby", zones=(("az1", 2),), cost=50.0)), (), (), 0.0)
    assert lc.placement_rows(plan, "mut-a") == [
        PlacementRow("r", "primary", "telecom", "C1", "az1", 1, 2.0, 4.0, 50.0, 1.0, 100.01),
        PlacementRow("r", "primary", "telecom", "C1", "az2", 3, 6.0, 12.0, 150.0, 3.0, 300.02),
        PlacementRow("s", "standby", "telecom", "C1", "az1", 2, 8.0, 16.0, 200.0, 4.0, 50.0)]
    assert lc.placement_rows(plan, "mut-c") == []


def test_reserved_and_merged_usage():
    rows = [{"provider": "telecom", "zone": "az1", "reserved_vcpu": 4, "reserved_ram_gb": 8, "reserved_disk_gb": 90},
            {"provider": "unicom", "zone": "az2", "reserved_vcpu": 1, "reserved_ram_gb": 2, "reserved_disk_gb": 3}]
    reserved = lc.reserved_usage(rows)
    assert reserved == (Usage("telecom", "az1", 4, 8, 90), Usage("unicom", "az2", 1, 2, 3))
    live = (Usage("telecom", "az1", 6, 2, 100), Usage("telecom", "az0", 1, 1, 1))
    assert lc.merge_usage(reserved, live) == (
        Usage("telecom", "az0", 1.0, 1.0, 1.0), Usage("telecom", "az1", 6.0, 8.0, 100.0),
        Usage("unicom", "az2", 1.0, 2.0, 3.0))
    assert lc.merge_usage() == ()
    assert lc.merge_usage((Usage("telecom", "az1", 0.5, 0, 0.25),)) == (Usage("telecom", "az1", 0.5, 0.0, 0.25),)


# --------------------------------------------------------------------------- reclaim
def test_reclaim_candidates_contract_ended_before_the_day_or_gone():
    cat = catalog([provider("telecom")], [department("mut-a", [
        contract("OLD", "telecom", end=dt.date(2026, 11, 25)), contract("EDGE", "telecom", end=DAY),
        contract("NEW", "telecom")], [])])
    records = [rec(1, lc.CONFIGURED, [row(contract_id="OLD")]), rec(2, lc.PUBLISHED, [row(contract_id="EDGE")]),
               rec(3, lc.MONITORED, [row(contract_id="GONE"), row(contract_id="OLD", zone="az2")]),
               rec(4, lc.APPROVED, [row(contract_id="OLD")]), rec(5, lc.RECLAIM_PLANNED, [row(contract_id="OLD")]),
               rec(6, lc.CONFIGURED, [row(contract_id="NEW")]), rec(7, lc.PUBLISHED, [row(contract_id="X")], "mut-z")]
    out = lc.reclaim_candidates(records, cat, DAY)
    assert [(c.request_id, c.state, c.reasons, c.evidence) for c in out] == [
        (1, lc.CONFIGURED, ("contract OLD with telecom ended on 2026-11-25",), {"contracts": {"OLD": "ended 2026-11-25"}}),
        (3, lc.MONITORED, ("contract GONE is no longer in the catalog", "contract OLD with telecom ended on 2026-11-25"),
         {"contracts": {"GONE": "missing", "OLD": "ended 2026-11-25"}}),
        (7, lc.PUBLISHED, ("contract X is no longer in the catalog",), {"contracts": {"X": "missing"}})]
    assert out[0].department == "mut-a" and out[2].department == "mut-z"


def test_reclaim_candidates_idle_at_the_threshold_and_not_below():
    cat = catalog([provider("telecom"), provider("unicom")], [department("mut-a", [contract("C1", "telecom")], [])])
    r = rec(1, lc.PUBLISHED, [row(contract_id="C1"), row(contract_id="C1", prov="unicom")])
    idle = {("mut-a", "telecom"): 7.0, ("mut-a", "unicom"): 6.5, ("mut-b", "telecom"): 30}
    [c] = lc.reclaim_candidates([r], cat, DAY, idle, idle_days=7)
    assert c.reasons == ("no server in use on telecom for 7 days (>= 7)",) and c.evidence == {"idle_days": {"telecom": 7.0}}
    [c] = lc.reclaim_candidates([r], cat, DAY, idle, idle_days=6)
    assert c.evidence == {"idle_days": {"telecom": 7.0, "unicom": 6.5}}
    assert lc.reclaim_candidates([r], cat, DAY, idle, idle_days=8) == []
    assert lc.reclaim_candidates([r], cat, DAY, idle) == []          # idle_days 0: idleness not asked about


# --------------------------------------------------------------------------- configure
def test_plan_from_records_sums_each_request_role_over_records_and_zones():
    records = [
        rec(0, lc.CONFIGURED, [row("r", cost=999.0)], dept="mut-b"),
        rec(1, lc.CONFIGURED, [row("r", cost=100.004, zone="az1", n=1, vcpu=2.4, ram=4.4, disk=50.4, fips=0.4),
                               row("r", cost=200.004, zone="az2", n=2, vcpu=4.4, ram=8.4, disk=100.4, fips=0.4)]),
        rec(2, lc.APPROVED, [row("r", cost=50.0, zone="az1", n=1), row("s", "C2", 10.0, role="standby", prov="unicom")]),
        rec(3, lc.CONFIGURED, [row("r", cost=999.0)], dept="mut-b")]
    plan = lc.plan_from_records(records, DAY, "mut-a")
    assert plan.date == DAY and plan.unplaced == () and plan.utilization == ()
    assert plan.placements == (
        Placement("mut-a", "r", "primary", "telecom", "C1", (("az1", 2), ("az2", 2)), 9, 17, 201, 2, 350.01),
        Placement("mut-a", "s", "standby", "unicom", "C2", (("az1", 1),), 2, 4, 50, 1, 10.0))
    assert plan.total_monthly_cost_cny == 360.01


def test_catalog_with_records_keeps_the_department_and_its_records_requests_sorted():
    cat = _cat()
    def doc(*names, count=1):
        return {"department": "mut-a", "requests": [
            {"name": n, "template": "web", "size": "small", "count": count, "mlps_level": 3} for n in names]}

    records = [rec(1, lc.CONFIGURED, document=doc("zz", "aa")), rec(2, lc.APPROVED, document=doc("aa", count=3)),
               rec(3, lc.APPROVED, dept="mut-b", document={**doc("bb"), "department": "mut-b"})]
    out = lc.catalog_with_records(cat, "mut-a", records)
    [d] = out.departments
    assert d.name == "mut-a" and [(q.name, q.count) for q in d.requests] == [("aa", 3), ("zz", 1)]
    assert d.contracts == cat.department("mut-a").contracts
