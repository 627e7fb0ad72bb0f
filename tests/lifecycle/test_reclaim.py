"""`request publish` and `request reclaim`: candidates from ended contracts and from the exporter's data in a
REAL Prometheus; marking is audited; confirming releases capacity; nothing is deleted silently."""
from __future__ import annotations

import json

import pytest
import os

from click.testing import CliRunner

from cli.main import cli
from cli.request import idle_tenants
from tests.lifecycle.conftest import PROBE_END
from yunshang import lifecycle as lc
from yunshang.store import CapacityRow, PlacementRow, open_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")


@pytest.fixture(autouse=True)
def _people(people_clouds, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", people_clouds)


def run(db, *args, code=0):
    r = CliRunner().invoke(cli, ["request", "--db", db, *args], env={"YUNSHANG_CATALOG": CATALOG},
                           catch_exceptions=False)
    assert r.exit_code == code, r.output
    return r


def _configured(s, dept, name, provider, contract):
    doc = lc.parse_request_document({"department": dept, "requests": [
        {"name": name, "template": "web-standard", "size": "small", "count": 1}],
        "probes": [{"name": name, "kind": "http", "target": "http://127.0.0.1:18999/"}]}, "f", default_mlps=3)
    r = s.submit(doc, "dept")
    s.set_capacity([CapacityRow(provider, "az1", 1000, 1000, 100000)], "ops")
    s.review(r.id, "li", [PlacementRow(name, "primary", provider, contract, "az1", 1, 2, 4, 50, 1, 100.0)])
    s.approve(r.id, "wang", "ok")
    s.configure(r.id, "li", "sdk")
    return r.id


def test_monitor_needs_probe_data_in_prometheus(tmp_path, prometheus_month):
    db = "sqlite:///" + str(tmp_path / "m.db")
    with open_store(db) as s:
        doc = lc.parse_request_document({"department": "health", "requests": [
            {"name": "health-portal", "template": "web-standard", "size": "small", "count": 1}],
            "probes": [{"name": "health-portal", "kind": "http", "target": "http://127.0.0.1:18111/"}]}, "f", default_mlps=3)
        rid = s.submit(doc, "dept").id
        s.set_capacity([CapacityRow("unicom", "az1", 100, 100, 1000)], "ops")
        s.review(rid, "li", [PlacementRow("health-portal", "primary", "unicom", "WJ-2025-01", "az1", 1, 2, 4, 50, 1, 1.0)])
        s.approve(rid, "wang", "ok")
        s.configure(rid, "li", "sdk")
    run(db, "publish", str(rid), "--os-cloud", "person-center-engineer")
    out = json.loads(run(db, "monitor", str(rid), "--os-cloud", "person-center-engineer", "--prometheus", prometheus_month,
                         "--within-days", "30", "-o", "json").stdout)
    assert out["state"] == "monitored"


def test_idle_needs_zero_use_over_the_whole_window(prometheus_month):
    assert idle_tenants(prometheus_month, 3, PROBE_END) == {("health", "unicom"): 3.0}
    assert idle_tenants(prometheus_month, 7, PROBE_END) == {}        # data covers only 5 days


def test_reclaim_plan_mark_confirm_and_keep(tmp_path, prometheus_month):
    db = "sqlite:///" + str(tmp_path / "l.db")
    with open_store(db) as s:
        health = _configured(s, "health", "his", "unicom", "WJ-2025-01")
        tourism = _configured(s, "tourism", "tix", "unicom", "WL-2026-01")
        ended = _configured(s, "health", "old", "unicom", "WJ-2025-01")
    pub = json.loads(run(db, "publish", str(health), "--os-cloud", "person-center-engineer", "--catalog", CATALOG, "-o",
                         "json").stdout)
    assert pub["state"] == "published"
    log = json.loads(run(db, "log", "--os-cloud", "person-center-auditor", "--request", str(health), "-o", "json").stdout)
    assert {p["name"] for p in log[-1]["after"]["probes"]} == {"his"}
    # the backfilled data has no "his" probe of health: monitoring is refused, state unchanged
    r = run(db, "monitor", str(health), "--os-cloud", "person-center-engineer", "--prometheus", prometheus_month,
            "--within-days", "30", code=1)
    assert "no probe data" in r.output and "his" in r.output
    # plan only: nothing changes
    out = json.loads(run(db, "reclaim", "--idle-days", "3", "--prometheus", prometheus_month,
                         "--date", "2026-11-15", "-o", "json", "--os-cloud", "person-center-engineer").stdout)
    assert {c["request_id"] for c in out} == {health, ended}       # health idle on unicom; tourism busy
    assert all("no server in use on unicom for 3 days" in c["reasons"][0] for c in out)
    assert json.loads(run(db, "show", str(health), "--os-cloud", "person-health-it", "-o", "json").stdout)["state"] == "published"
    # a contract that ended: 2027-07-01 is after WJ-2025-01's end (2027-06-30)
    run(db, "reclaim", "--date", "2027-07-01", code=2)                             # the reader is a person
    assert json.loads(run(db, "reclaim", "--date", "2027-07-01", "-o", "json", "--os-cloud",
                          "person-finance-it").stdout) == []                    # another department's: not shown
    out = json.loads(run(db, "reclaim", "--date", "2027-07-01", "-o", "json",
                         "--os-cloud", "person-center-engineer").stdout)
    assert {c["request_id"] for c in out} == {health, ended}
    assert "ended on 2027-06-30" in out[0]["reasons"][0]
    run(db, "reclaim", "--date", "2027-07-01", "--mark", code=2)                  # --mark needs --os-cloud
    run(db, "reclaim", "--date", "2027-07-01", "--mark", "--os-cloud", "person-center-engineer")
    assert json.loads(run(db, "show", str(health), "--os-cloud", "person-health-it", "-o",
                          "json").stdout)["state"] == "reclaim-planned"
    run(db, "keep", str(ended), "--os-cloud", "person-center-engineer", "--reason", "contract renewed")
    r = run(db, "reclaim-confirm", str(health), "--os-cloud", "person-center-engineer", "--reason", "department agreed")
    assert "yunshang tenant destroy health --operator unicom" in r.output
    with open_store(db) as s:
        assert s.get(health).state == lc.RECLAIMED and s.get(ended).state == lc.PUBLISHED
        assert s.get(tourism).state == lc.CONFIGURED
        entries = [e for e in s.audit_log() if e.action == "plan-reclaim"]
        assert {e.subject for e in entries} == {f"request:{health}", f"request:{ended}"}
        assert "ended on 2027-06-30" in entries[0].reason and entries[0].after["evidence"]["contracts"]
        cap = s.capacity()[0]
        assert cap["reserved_vcpu"] == 4                                    # health's 2 vcpu released
