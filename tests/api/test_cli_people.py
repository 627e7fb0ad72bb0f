"""Every CLI command that reads department data acts as a person of the center's real Keystone
(`--os-cloud person-<name>` of the devcloud's clouds.yaml), with role and department enforced: the
wrong person is refused (exit 2, nothing of another department shown, nothing written) and the right
one gets exactly their share. Bills, the invoice check, the report, the takeover plan over the store,
reclaim candidates and the takeover drill (refused before any process is touched)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.api.conftest import SAMPLE
from yunshang import lifecycle as lc
from yunshang.store import CapacityRow, PlacementRow, open_store

pytestmark = pytest.mark.cloud
UTC = dt.timezone.utc
AT = "2026-11-20T00:00"


class _Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """health and finance each hold one configured request since 2026-11-01 (on unicom / their operator)."""
    from yunshang.catalog import load_catalog

    url = "sqlite:///" + str(tmp_path_factory.mktemp("people") / "l.db")
    cat = load_catalog(SAMPLE)
    clock = _Clock(dt.datetime(2026, 10, 31, 22, tzinfo=UTC))
    with open_store(url, clock=clock) as s:
        s.set_capacity([CapacityRow(p.name, z.name, 1e6, 1e6, 1e7) for p in cat.providers for z in p.zones], "ops")
        ids = []
        for dept, name in (("health", "his"), ("finance", "ledger")):
            c = next(c for c in cat.department(dept).contracts if c.role == "primary")
            doc = lc.parse_request_document({"department": dept, "requests": [
                {"name": name, "template": "web-standard", "size": "medium", "count": 2}]}, "f", default_mlps=3)
            r = s.submit(doc, "seed")
            s.review(r.id, "seed", [PlacementRow(name, "primary", c.provider, c.id, "az1", 2, 8, 16, 160, 2, 100)])
            s.approve(r.id, "seed", "ok")
            ids.append(r.id)
        clock.t = dt.datetime(2026, 11, 1, tzinfo=UTC)
        for i in ids:
            s.configure(i, "seed", "sdk")
    return url


def y(clouds, *args, code=0):
    r = CliRunner().invoke(cli, list(args), env={"OS_CLIENT_CONFIG_FILE": clouds}, catch_exceptions=False)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r


def bill(clouds, db, person, *extra, code=0):
    return y(clouds, "bill", "--catalog", str(SAMPLE), "--db", db, "--month", "2026-11", "--at", AT, "-o", "json",
             *(("--os-cloud", person) if person else ()), *extra, code=code)


def test_bills_a_department_sees_its_own_an_auditor_every_one(clouds, db):
    out = json.loads(bill(clouds, db, "person-health-head").stdout)
    assert [d["department"] for d in out["departments"]] == ["health"]
    assert out["departments"][0]["contracts"][0]["gross_cny"] > 0
    assert [d["department"] for d in json.loads(bill(clouds, db, "person-finance-it").stdout)["departments"]] \
        == ["finance"]
    r = bill(clouds, db, "person-health-head", "--department", "finance", code=2)
    assert "another department" in r.output and "ledger" not in r.output
    r = bill(clouds, db, None, code=2)
    assert "--os-cloud" in r.output and "health" not in r.output
    every = {d["department"] for d in json.loads(bill(clouds, db, "person-center-auditor").stdout)["departments"]}
    assert {"health", "finance"} <= every and len(every) > 2
    # a statement too, of the own department only
    r = bill(clouds, db, "person-finance-it", "--department", "health", "-o", "html", code=2)
    assert "<html" not in r.output


def test_the_invoice_check_and_the_report_are_a_center_role(clouds, db, tmp_path):
    inv = tmp_path / "inv.csv"
    inv.write_text("contract,resource,quantity,amount\nWJ-2025-01,vcpu,720,28.00\n", encoding="utf-8")
    rec = ["bill", "reconcile", "--catalog", str(SAMPLE), "--db", db, "--month", "2026-11", "--at", "2026-12-05",
           "--invoice", str(inv), "-o", "json"]
    r = y(clouds, *rec, "--os-cloud", "person-health-head", code=2)
    assert "may not reconcile" in r.output and "WJ-2025-01" not in r.output
    assert json.loads(y(clouds, *rec, "--os-cloud", "person-center-auditor").stdout)["contracts"]
    rep = ["report", "--catalog", str(SAMPLE), "--db", db, "--month", "2026-11", "--at", AT, "-o", "json"]
    r = y(clouds, *rep, "--os-cloud", "person-health-it", code=2)
    assert "report.read" in r.output and "taojiang" not in r.output
    assert json.loads(y(clouds, *rep, "--os-cloud", "person-center-reviewer").stdout)["sites"]


def test_takeover_plan_over_the_store_and_reclaim_candidates(clouds, db):
    tp = ["takeover", "plan", "--operator", "unicom", "--catalog", str(SAMPLE), "--db", db, "--force", "-o", "json"]
    r = y(clouds, *tp, code=2)
    assert "--os-cloud" in r.output
    r = y(clouds, *tp, "--os-cloud", "person-health-head", code=2)
    assert "takeover.plan" in r.output and "ledger" not in r.output
    moves = json.loads(y(clouds, *tp, "--os-cloud", "person-center-engineer").stdout)["moves"]
    assert "health" in {m["department"] for m in moves}
    recl = ["request", "--db", db, "reclaim", "--catalog", str(SAMPLE), "--date", "2027-07-01", "-o", "json"]
    y(clouds, *recl, code=2)
    seen = {c["department"] for c in json.loads(y(clouds, *recl, "--os-cloud", "person-center-engineer").stdout)}
    assert "health" in seen                                   # WJ-2025-01 ended 2027-06-30
    mine = {c["department"] for c in json.loads(y(clouds, *recl, "--os-cloud", "person-finance-it").stdout)}
    assert mine <= {"finance"}
    r = y(clouds, *recl, "--mark", "--os-cloud", "person-finance-it", code=2)
    assert "plan-reclaim" in r.output


def test_the_drill_refuses_anyone_but_an_engineer_before_touching_a_process(clouds, db, devcloud, tmp_path):
    from yunshang.devcloud import procs

    before = {n: procs.running_pid(devcloud.dir, n) for n in ("telecom/keystone", "telecom/nova_api")}
    assert all(before.values()), before
    evidence = tmp_path / "drill.json"
    for person in ("person-center-reviewer", "person-center-auditor", "person-health-head"):
        r = y(clouds, "takeover", "drill", "--from", "telecom", "--to", "unicom", "--catalog", str(SAMPLE),
              "--clouds", clouds, "--db", db, "--evidence", str(evidence), "--os-cloud", person, code=2)
        assert "takeover.drill" in r.output and "engineer" in r.output
    assert not evidence.exists()
    assert {n: procs.running_pid(devcloud.dir, n) for n in before} == before
    with open_store(db) as s:
        assert not [e for e in s.audit_log() if e.action == "takeover-drill"]
