"""The lifecycle state machine and the request document (pure)."""
from __future__ import annotations

import pathlib
import re

import pytest
from hypothesis import given, strategies as st

from yunshang import lifecycle as lc
from yunshang.errors import InputInvalid


def test_happy_path():
    s = ""
    for action, reason in [("submit", ""), ("review", ""), ("approve", "ok"), ("configure", ""), ("publish", ""),
                           ("monitor", ""), ("plan-reclaim", "idle"), ("reclaim", "confirmed")]:
        s = lc.transition(s, action, "li", reason)
    assert s == lc.RECLAIMED
    assert lc.allowed_actions(lc.RECLAIMED) == ()
    assert lc.allowed_actions(lc.REJECTED) == ()


def test_reasons_and_actors_are_required():
    with pytest.raises(lc.TransitionRefused, match="reason is required"):
        lc.transition(lc.REVIEWED, "approve", "wang", "")
    with pytest.raises(lc.TransitionRefused, match="must be named"):
        lc.transition(lc.REVIEWED, "review", " ")
    with pytest.raises(lc.TransitionRefused, match="unknown lifecycle action"):
        lc.transition(lc.REVIEWED, "delete", "x", "y")


@given(st.sampled_from(("",) + lc.STATES), st.sampled_from(tuple(lc.ACTIONS)))
def test_transition_is_total_and_only_allowed_moves_pass(state, action):
    try:
        out = lc.transition(state, action, "li", "because")
    except lc.TransitionRefused:
        assert action not in lc.allowed_actions(state)
    else:
        assert action in lc.allowed_actions(state) and out == lc.ACTIONS[action].target


def test_nothing_leaves_reclaimed_or_rejected_and_approval_needs_review():
    for final in (lc.RECLAIMED, lc.REJECTED):
        for a in lc.ACTIONS:
            with pytest.raises(lc.TransitionRefused):
                lc.transition(final, a, "x", "y")
    with pytest.raises(lc.TransitionRefused, match="possible now: endorse, review, reject"):
        lc.transition(lc.SUBMITTED, "approve", "x", "y")


class _E:
    def __init__(self, action, actor):
        self.action, self.actor = action, actor


def test_the_approval_chain_and_separation_of_duties():
    from yunshang.model import ApprovalPolicy

    pol = ApprovalPolicy()
    hist = [_E("submit", "it"), _E("endorse", "head"), _E("review", "rev")]
    assert "must endorse" in lc.chain_refusal(lc.SUBMITTED, "review", "rev", hist[:1], 0, pol)
    assert lc.chain_refusal(lc.SUBMITTED, "review", "rev", hist[:1], 0, ApprovalPolicy(False)) is None
    assert lc.chain_refusal(lc.ENDORSED, "review", "rev", hist[:2], 0, pol) is None
    assert "submitted" in lc.chain_refusal(lc.ENDORSED, "review", "it", hist[:2], 0, pol)
    for who in ("it", "head", "rev"):                       # nobody approves what they submitted/endorsed/reviewed
        assert "separation of duties" in lc.chain_refusal(lc.REVIEWED, "approve", who, hist, 0, pol)
    assert lc.chain_refusal(lc.REVIEWED, "approve", "a1", hist, 0, pol) is None
    # above the threshold: two different approvers
    assert lc.approval_step(lc.REVIEWED, 100000.01, pol) == "approve-first"
    assert lc.approval_step(lc.REVIEWED, 100000.0, pol) == "approve"
    assert lc.approval_step(lc.FIRST_APPROVED, 500000, pol) == "approve"
    hist2 = hist + [_E("approve-first", "a1")]
    assert "different approver" in lc.chain_refusal(lc.FIRST_APPROVED, "approve", "a1", hist2, 5e5, pol)
    assert lc.chain_refusal(lc.FIRST_APPROVED, "approve", "a2", hist2, 5e5, pol) is None


def test_request_document_all_problems_at_once():
    with pytest.raises(InputInvalid) as e:
        lc.parse_request_document({"department": "Bad Name", "requests": [
            {"name": "a", "template": "web", "size": "s", "count": 0},
            {"name": "a", "template": "", "size": "s", "colour": "red", "ha": "yes"}]}, "req.yaml")
    text = str(e.value)
    for needle in ("req.yaml: department", "requests[0].count", "requests[1].name: duplicate",
                   "requests[1].template", "requests[1].colour: unknown field", "requests[1].ha"):
        assert needle in text, needle


def test_request_document_round_trips():
    doc = lc.parse_request_document({"department": "health", "title": "t", "requests": [
        {"name": "his", "template": "web-standard", "size": "medium", "count": 2, "ha": True}],
        "probes": [{"name": "portal", "kind": "tcp", "target": "127.0.0.1:80"}]}, "f", default_mlps=3)
    assert doc.requests[0].mlps_level == 3 and doc.requests[0].ha
    assert lc.parse_request_document(lc.document_to_dict(doc), "f") == doc


def test_no_code_path_rewrites_the_audit_table():
    """The tool never issues UPDATE/DELETE/TRUNCATE against the audit table (the DB also refuses)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = []
    for path in list((root / "yunshang").rglob("*.py")) + list((root / "cli").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(UPDATE\s+audit\b|DELETE\s+FROM\s+audit\b|TRUNCATE\s+(TABLE\s+)?audit\b"
                             r"|DROP\s+(TABLE|TRIGGER)\s+(IF\s+EXISTS\s+)?audit)", text, re.I):
            offenders.append(f"{path.relative_to(root)}: {m.group(0)}")
    assert offenders == []


def test_review_catalog_takes_committed_cost_off_the_ceiling():
    import os

    from yunshang.catalog import load_catalog
    from yunshang.store import PlacementRow, RequestRecord

    cat = load_catalog(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prefecture"))
    doc = lc.parse_request_document({"department": "health", "requests": [
        {"name": "x", "template": "web-standard", "size": "small", "count": 1}]}, "f", catalog=cat)
    def rec(i, state, cost):
        return RequestRecord(i, "health", "", state, {}, "", "", None, None, placements=(
            PlacementRow("a", "primary", "unicom", "WJ-2025-01", "az1", 1, 1, 1, 1, 0, cost),))

    committed = lc.committed_cost_cny([rec(1, lc.CONFIGURED, 100000.0), rec(2, lc.REJECTED, 5.0),
                                       rec(3, lc.APPROVED, 15000.0), rec(4, lc.APPROVED, 7.0)], "health", 4)
    assert committed == {"WJ-2025-01": 115000.0}
    c2 = lc.catalog_for_review(cat, doc, committed)
    assert c2.department("health").contract("WJ-2025-01").ceiling_cny_per_month == 5000.0
    assert [d.name for d in c2.departments] == ["health"] and c2.department("health").requests == doc.requests


def test_one_request_schema_for_the_catalog_and_the_request_document():
    """A request entry means the same in a department file and in a request document: the same
    fields, the same checks, and mlps_level defaulting to the department's level in both."""
    import os

    from yunshang.catalog import load_catalog

    cat = load_catalog(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prefecture"))
    health = cat.department("health")
    entry = {"name": "x", "template": "web-standard", "size": "small", "count": 1}
    doc = lc.parse_request_document({"department": "health", "requests": [entry]}, "f", catalog=cat)
    assert doc.requests[0].mlps_level == health.mlps_level == 3
    with pytest.raises(InputInvalid, match="requests.0..mlps_level: missing"):
        lc.parse_request_document({"department": "health", "requests": [entry]}, "f")
    with pytest.raises(InputInvalid, match="count: expected an integer from 1 to 10000"):
        lc.parse_request_document({"department": "health", "requests": [{**entry, "count": 0}]}, "f", catalog=cat)
    with pytest.raises(InputInvalid, match="requests: expected a non-empty list"):
        lc.parse_request_document({"department": "health", "requests": []}, "f", catalog=cat)
