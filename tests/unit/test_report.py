"""`yunshang report`: its numbers reconciled with `bill` and `plan` (same store, same catalog), the roll-up
per site, capacity peak and mean, --site, and refusals. Through click's runner on a SQLite store."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang import lifecycle as lc
from yunshang.catalog import load_catalog
from yunshang.sites import SiteTree
from yunshang.store import CapacityRow, PlacementRow, open_store

SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")
UTC = dt.timezone.utc
AT = "2026-12-01T00:00"           # the month is over: charged to its end


class SetClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _request(s, clock, dept, name, template, size, count, rows, level):
    doc = lc.parse_request_document({"department": dept, "requests": [
        {"name": name, "template": template, "size": size, "count": count}]}, "f", default_mlps=level)
    r = s.submit(doc, "dept")
    s.review(r.id, "li", rows)
    s.approve(r.id, "wang", "ok")
    return r.id


@pytest.fixture()
def db(tmp_path) -> str:
    """The city's health bureau on unicom, the county health bureau in taojiang's zone (cmcc) with a standby
    copy at the city (telecom), and the township's portal in taojiang's zone, reclaimed on 2026-11-16."""
    url = "sqlite:///" + str(tmp_path / "l.db")
    clock = SetClock(dt.datetime(2026, 10, 31, 22, tzinfo=UTC))
    with open_store(url, clock=clock) as s:
        s.set_capacity([CapacityRow(op, z, 1e6, 1e6, 1e7) for op, z in
                        (("unicom", "az1"), ("telecom", "az1"), ("cmcc", "taojiang-1"))], "ops")
        ids = [
            _request(s, clock, "health", "portal", "web-standard", "medium", 2,
                     [PlacementRow("portal", "primary", "unicom", "WJ-2025-01", "az1", 2, 8, 16, 160, 2, 0)], 3),
            _request(s, clock, "xian-taojiang-health", "county-his", "app-java", "medium", 6,
                     [PlacementRow("county-his", "primary", "cmcc", "TJWJ-2026-01", "taojiang-1", 6, 24, 96, 600, 0, 0),
                      PlacementRow("county-his", "standby", "telecom", "TJWJ-2026-02", "az1", 6, 24, 96, 600, 0, 0)],
                     3),
            _request(s, clock, "xiang-fuqiushan-government", "township-portal", "web-standard", "small", 4,
                     [PlacementRow("township-portal", "primary", "cmcc", "FQS-2026-01", "taojiang-1", 4, 8, 16, 200,
                                   4, 0)], 2),
        ]
        clock.t = dt.datetime(2026, 11, 1, tzinfo=UTC)
        for i in ids:
            s.configure(i, "li", "sdk")
        clock.t = dt.datetime(2026, 11, 16, tzinfo=UTC)
        s.plan_reclaim(ids[2], "li", "the township moved its portal to the province")
        s.reclaim(ids[2], "li", "confirmed")
    return url


@pytest.fixture(autouse=True)
def auditor(monkeypatch):
    from tests.unit.people import act_as

    return act_as(monkeypatch, "center-auditor", "auditor")


AS = ("--os-cloud", "person-center-auditor")


def run(*args):
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, r.output
    return r.stdout


def report(db, *extra):
    return json.loads(run("report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at", AT,
                          "-o", "json", *AS, *extra))


def test_numbers_reconcile_with_bill_and_plan(db):
    rep = report(db)
    bill = json.loads(run("bill", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at", AT, "-o", "json", *AS))
    plan = json.loads(run("plan", "--catalog", SAMPLE, "--date", "2026-11-01", "-o", "json"))
    cat = load_catalog(SAMPLE)
    tree = SiteTree(cat.sites)
    site_of = {d.name: tree.resolve(d.site) for d in cat.departments}

    billed = {d["department"]: round(sum(c["net_cny"] for c in d["contracts"]), 2) for d in bill["departments"]}
    assert billed["xian-taojiang-health"] > 0 and billed["xiang-fuqiushan-government"] > 0
    # per department: the bill's due amount, per operator too
    for d in rep["departments"]:
        assert d["net_cny"] == billed.get(d["department"], 0.0), d["department"]
        per_op = {}
        for bd in bill["departments"]:
            if bd["department"] == d["department"]:
                for c in bd["contracts"]:
                    per_op[c["operator"]] = round(per_op.get(c["operator"], 0) + c["net_cny"], 2)
        assert {k: v for k, v in per_op.items() if v} == {k: v for k, v in d["by_operator"].items() if v}
    sites = {s["site"]: s for s in rep["sites"]}
    # the root is everything the bill charges; each operator's total is the bill's
    assert sites["yiyang"]["spend"]["net_cny"] == round(sum(o["net_cny"] for o in bill["operators"]), 2)
    assert {k: v for k, v in sites["yiyang"]["spend"]["by_operator"].items() if v} == \
        {o["operator"]: o["net_cny"] for o in bill["operators"] if o["net_cny"]}
    # a county is its own departments and its township's
    assert sites["taojiang"]["spend"]["net_cny"] == round(billed["xian-taojiang-health"]
                                                          + billed["xiang-fuqiushan-government"], 2)
    assert sites["fuqiushan"]["spend"]["net_cny"] == billed["xiang-fuqiushan-government"]
    assert sites["taojiang"]["spend"]["budget_cny_per_month"] == 60000
    # what plan places per month, per site and below
    for name, s in sites.items():
        below = set(tree.subtree(name))
        want = round(sum(p["monthly_cost_cny"] for p in plan["placements"] if site_of[p["department"]] in below), 2)
        assert s["spend"]["planned_monthly_cny"] == want, name
    assert sites["yiyang"]["spend"]["planned_monthly_cny"] == plan["total_monthly_cost_cny"]
    # tiers: the city's 16 departments, the counties' 2, the township's 1
    tiers = {t["tier"]: t for t in rep["tiers"]}
    assert {t: tiers[t]["departments"] for t in tiers} == {"city": 16, "county": 2, "township": 1}
    assert round(sum(t["net_cny"] for t in rep["tiers"]), 2) == sites["yiyang"]["spend"]["net_cny"]


def test_capacity_peak_and_mean_over_the_month(db):
    sites = {s["site"]: s for s in report(db)["sites"]}
    tj = sites["taojiang"]["capacity"]["vcpu"]
    # taojiang-1 held 24 vCPU all month and the township's 8 for the first 15 of 30 days
    assert tj["peak"] == 32 and tj["mean"] == 28 and tj["capacity"] == 128 * 4
    assert tj["peak_ratio"] == round(32 / 512, 4)
    city = sites["yiyang"]["capacity"]["vcpu"]
    assert city["peak"] == 8 + 24 + 32 and city["mean"] == 8 + 24 + 28      # unicom + the standby + the county
    assert sites["fuqiushan"]["capacity"]["vcpu"]["capacity"] == 0                # no machine room of its own
    assert sites["fuqiushan"]["capacity"]["vcpu"]["peak_ratio"] is None


def test_site_option_reports_that_subtree_only(db):
    rep = report(db, "--site", "taojiang")
    assert rep["site"] == "taojiang" and [s["site"] for s in rep["sites"]] == ["taojiang", "fuqiushan"]
    assert {d["department"] for d in rep["departments"]} == {"xian-taojiang-health", "xiang-fuqiushan-government"}


def test_table_and_html(db, tmp_path):
    out = run("report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at", AT, *AS)
    assert out.startswith("Report 2026-11 for yiyang and below") and "  taojiang" in out and "    fuqiushan" in out
    page = tmp_path / "r.html"
    run("report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at", AT, "-o", "html", "--out", str(page),
        *AS)
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") >= 3 and "桃江县" in text and "default-src 'none'" in text and "<script" not in text


def test_compliance_and_migration_inputs(db, tmp_path):
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({"reports": [{"department": "xian-taojiang-health", "compliant": False,
                                           "checked_at": "2026-11-20T00:00:00+00:00"},
                                          {"department": "health", "compliant": True}]}))
    rep = report(db, "--compliance", str(ev))
    sites = {s["site"]: s for s in rep["sites"]}
    assert sites["taojiang"]["compliance"] == {"compliant": 0, "not-compliant": 1, "unchecked": 1,
                                               "operators_not_certified": 0}
    assert sites["yiyang"]["compliance"]["compliant"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"reports": [{"department": 5}]}')
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11",
                                 "--compliance", str(bad), *AS])
    assert r.exit_code == 2 and "compliance check --out" in r.output and "Traceback" not in r.output


def test_refusals(db, monkeypatch):
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--site", "mars"])
    assert r.exit_code == 2 and "no such site" in r.output and "taojiang" in r.output
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11"])
    assert r.exit_code == 2 and "--os-cloud" in r.output
    from tests.unit.people import act_as

    act_as(monkeypatch, "health-head", "department-head", department="health")
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", *AS])
    assert r.exit_code == 2 and "may not report.read" in r.output and "taojiang" not in r.output
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "11/2026"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_migration_progress_rolls_up():
    import datetime as dt_

    from yunshang.placement import place
    from yunshang.report import MigrationHost, build_report

    cat = load_catalog(SAMPLE)
    hosts = [MigrationHost("h1", "xiang-fuqiushan-government", "migrated", True),
             MigrationHost("h2", "xian-taojiang-health", "migrated", False),
             MigrationHost("h3", "xian-taojiang-health", "failed", False),
             MigrationHost("h4", "health", "pending", False)]
    rep = build_report(cat, "2026-11", [], [], place(cat, dt_.date(2026, 11, 1)),
                       to=dt_.datetime(2026, 12, 1, tzinfo=UTC), migration=hosts)
    sites = {s["site"]: s["migration"] for s in rep["sites"]}
    assert sites["fuqiushan"] == {"surveyed": 1, "migrated": 1, "cut_over": 1, "failed": 0}
    assert sites["taojiang"] == {"surveyed": 3, "migrated": 2, "cut_over": 1, "failed": 1}
    assert sites["yiyang"] == {"surveyed": 4, "migrated": 2, "cut_over": 1, "failed": 1}
