"""The plans table on both backends (SQLite and a real PostgreSQL): record, read back, latest per
department, audited; and `request approve` records the plan it approved."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang import plans as pl
from yunshang.catalog import load_catalog
from yunshang.placement import place
from yunshang.store import open_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")
REQ = os.path.join(ROOT, "examples", "requests", "health-vaccine.yaml")
DAY = dt.date(2026, 11, 26)


def test_plans_round_trip_on_both_backends(store_url):
    cat = load_catalog(CATALOG)
    plan = place(cat, DAY)
    with open_store(store_url) as st:
        a = pl.record_plan(st, cat, plan, by="li", source="plan --save", departments=["health", "tourism"])
        b = pl.record_plan(st, cat, plan, by="li", source="plan --save", departments=["tourism"])
        assert st.get_plan(a.id) == a and a.document == pl.plan_document(cat, plan, departments=["health", "tourism"])
        assert a.content_hash == pl.content_hash(a.document) and a.catalog_digest == pl.catalog_digest(cat)
        assert st.latest_plan("health").id == a.id and st.latest_plan("tourism").id == b.id
        assert st.latest_plan("nobody") is None
        rec, _, back, notes = pl.resolve_plan(st, cat, "health", None, DAY)
        assert rec.id == a.id and not notes
        assert back.placements == tuple(p for p in plan.placements if p.department in ("health", "tourism"))
        assert st.verify_audit()[0] and [e.action for e in st.audit_log()] == ["save-plan", "save-plan"]


@pytest.fixture()
def _people(people_clouds, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", people_clouds)


def run(db, *args):
    r = CliRunner().invoke(cli, ["request", "--db", db, *args], env={"YUNSHANG_CATALOG": CATALOG})
    assert r.exit_code == 0, r.output
    return r


def test_approve_records_the_plan_it_approved(store_url, _people):
    rid = str(json.loads(run(store_url, "submit", REQ, "--os-cloud", "person-health-it", "-o", "json").output)["id"])
    run(store_url, "endorse", rid, "--os-cloud", "person-health-head")
    rev = json.loads(run(store_url, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26",
                         "-o", "json").output)
    text = run(store_url, "approve", rid, "--os-cloud", "person-center-approver-1", "--reason", "ok").output
    assert "recorded plan" in text
    with open_store(store_url) as st:
        rec = pl.approval_plan(st, int(rid))
        assert f"recorded plan {rec.id} " in text and rec.source == f"request approve {rid}"
        assert rec.departments == ("health",) and rec.document["requests_from"] == "records"
        placed = {(p["request"], p["role"], p["provider"]) for p in rec.document["placements"]}
        assert placed == {(p["request_name"], p["role"], p["provider"]) for p in rev["placements"]}
        # the tenant it builds is exactly the approved request's (the catalog does not have it)
        cat, plan, _ = pl.applicable_plan(load_catalog(CATALOG), rec, DAY, ["health"])
        assert {r.name for r in cat.department("health").requests} == {p["request_name"] for p in rev["placements"]}
        assert sum(sum(n for _, n in p.zones) for p in plan.placements) == \
            sum(p["instances"] for p in rev["placements"])


def test_plan_save_records_the_engineer_keystone_knows(store_url, _people):
    """`plan --save` acts as an authenticated engineer; the plan's audit entry names the Keystone user."""
    base = ["plan", "--catalog", CATALOG, "--date", "2026-11-26", "--save", "--department", "health", "-o", "json"]
    env = {"YUNSHANG_DB": store_url}
    r = CliRunner().invoke(cli, base + ["--os-cloud", "person-center-engineer"], env=env)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)["recorded"]
    with open_store(store_url) as st:
        entry = [e for e in st.audit_log() if e.action == "save-plan"][-1]
        assert entry.actor.startswith("center-engineer (keystone:") and entry.subject == f"plan:{rec['id']}"
    for wrong in ("person-health-it", "person-center-approver-1"):      # a requester, a center role that is not it
        r = CliRunner().invoke(cli, base + ["--os-cloud", wrong], env=env)
        assert r.exit_code == 2 and "may not plan.save" in r.output, r.output
    r = CliRunner().invoke(cli, base, env=env)
    assert r.exit_code == 2 and "--os-cloud" in r.output
