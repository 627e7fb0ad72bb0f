"""`request configure` builds from a recorded plan (the one `stack up DEPT` / `tenant apply DEPT`
build), and refuses, before touching a cloud, a plan it cannot build as approved: none recorded,
an unknown id, contracts no longer valid, a catalog changed under it, or a plan that does not hold
the department's approved placements. These refusals need the center's Keystone (who acts) and no
tenant is built; the devcloud half (a tenant built) is test_configure_plan_devcloud.py."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from yunshang import lifecycle as lc
from yunshang import plans as pl
from yunshang.store import CapacityRow, PlacementRow, open_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")
REQ = os.path.join(ROOT, "examples", "requests", "health-vaccine.yaml")
ENGINEER = ("--os-cloud", "person-center-engineer")


@pytest.fixture(autouse=True)
def _people(people_clouds, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", people_clouds)


def run(db, *args, catalog=CATALOG, code=0):
    r = CliRunner().invoke(cli, ["request", "--db", db, *args], env={"YUNSHANG_CATALOG": catalog},
                           catch_exceptions=False)
    assert r.exit_code == code, r.output
    return r


def configure(db, rid, people_clouds, *extra, catalog=CATALOG, code=2):
    return run(db, "configure", rid, "--engine", "sdk", "--clouds", people_clouds, *ENGINEER, *extra,
               catalog=catalog, code=code)


def approved(db) -> tuple[str, dict]:
    rid = str(json.loads(run(db, "submit", REQ, "--os-cloud", "person-health-it", "-o", "json").output)["id"])
    run(db, "endorse", rid, "--os-cloud", "person-health-head")
    rev = json.loads(run(db, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26",
                         "-o", "json").output)
    run(db, "approve", rid, "--os-cloud", "person-center-approver-1", "--reason", "ok")
    return rid, rev


def untouched(db, rid):
    """Nothing was recorded: still approved, no configure entry in the audit log."""
    with open_store(db) as s:
        assert s.get(int(rid)).state == lc.APPROVED
        assert not [e for e in s.audit_log(subject=f"request:{rid}") if e.action == "configure"]


def test_configure_refuses_a_plan_it_cannot_build_as_approved(store_url, people_clouds, tmp_path):
    rid, rev = approved(store_url)
    with open_store(store_url) as s:
        mine = pl.approval_plan(s, int(rid))
    # contracts no longer valid on the apply date (health's end 2027-06-30): named, exit 2
    r = configure(store_url, rid, people_clouds, "--date", "2027-07-01")
    assert f"plan {mine.id} cannot be applied" in r.output and "is not valid on 2027-07-01" in r.output
    assert "WJ-2025-01" in r.output and r.output.count("\n") == 1
    # the catalog changed under the plan: a size it uses is different now
    cat = tmp_path / "catalog"
    shutil.copytree(CATALOG, cat)
    tpl = cat / "templates" / "web-standard.yaml"
    doc = yaml.safe_load(tpl.read_text(encoding="utf-8"))
    doc["sizes"]["medium"]["vcpu"] += 1
    tpl.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = configure(store_url, rid, people_clouds, catalog=str(cat))
    assert f"size medium of template web-standard changed since the plan: vcpu {doc['sizes']['medium']['vcpu'] - 1} " \
           f"-> {doc['sizes']['medium']['vcpu']}" in r.output
    # an unknown plan id
    r = configure(store_url, rid, people_clouds, "--plan", "999")
    assert "no recorded plan with id 999" in r.output
    # a later `plan --save` of health (the catalog re-placed) is now the latest plan covering health:
    # it does not hold the approved request, so configure refuses it, naming what it lacks
    r = CliRunner().invoke(cli, ["plan", "--catalog", CATALOG, "--date", "2026-11-26", "--save", "--department",
                                 "health", "--clouds", people_clouds, *ENGINEER, "-o", "json"],
                           env={"YUNSHANG_DB": store_url})
    assert r.exit_code == 0, r.output
    later = json.loads(r.output)["recorded"]["id"]
    r = configure(store_url, rid, people_clouds)
    assert f"plan {later} cannot be applied" in r.output
    for p in rev["placements"]:
        assert f"it places health/{p['request_name']} ({p['role']}) of request {rid} nowhere, approved on " \
               f"{p['provider']} ({p['contract']})" in r.output
    untouched(store_url, rid)
    # the plan the approval recorded is still the one to build: named with --plan it is accepted
    # (what stops it now is only the missing clouds entry of a made-up operator: not checked here)
    with open_store(store_url) as s:
        assert pl.plan_holds_records(mine, "health", [s.get(int(rid))]) == []
        assert pl.plan_holds_records(s.get_plan(later), "health", [s.get(int(rid))])


def test_configure_without_a_recorded_plan_says_how_to_make_one(tmp_path, people_clouds):
    db = "sqlite:///" + str(tmp_path / "l.db")
    with open_store(db) as s:         # approved through the store alone: no plan was recorded for it
        doc = lc.parse_request_document({"department": "finance", "requests": [
            {"name": "ledger", "template": "web-standard", "size": "small", "count": 1}]}, "f", default_mlps=3)
        rid = s.submit(doc, "dept").id
        s.set_capacity([CapacityRow("unicom", "az1", 1000, 1000, 100000)], "ops")
        s.review(rid, "li", [PlacementRow("ledger", "primary", "unicom", "CZ-2025-01", "az1", 1, 2, 4, 50, 1, 10.0)])
        s.approve(rid, "wang", "ok")
    r = configure(db, str(rid), people_clouds)
    assert "no recorded plan covers department finance" in r.output and "yunshang plan --save" in r.output
    assert r.output.count("\n") == 1
    untouched(db, rid)


def test_plan_holds_records_names_a_moved_placement(tmp_path):
    """Pure: the plan places an approved request on other zones / another size than approved."""
    db = "sqlite:///" + str(tmp_path / "p.db")
    with open_store(db) as s:
        doc = lc.parse_request_document({"department": "finance", "requests": [
            {"name": "ledger", "template": "web-standard", "size": "small", "count": 2}]}, "f", default_mlps=3)
        rid = s.submit(doc, "dept").id
        s.set_capacity([CapacityRow("unicom", z, 1000, 1000, 100000) for z in ("az1", "az2")], "ops")
        s.review(rid, "li", [PlacementRow("ledger", "primary", "unicom", "CZ-2025-01", "az1", 2, 4, 8, 100, 2, 20.0)])
        s.approve(rid, "wang", "ok")
        rec = s.get(rid)
    base = {"department": "finance", "request": "ledger", "role": "primary", "provider": "unicom",
            "contract": "CZ-2025-01", "zones": [["az1", 2]], "vcpu": 4, "ram_gb": 8, "disk_gb": 100,
            "floating_ips": 2, "monthly_cost_cny": 20.0, "sites": []}

    def record(*placements):
        document = {"format": 1, "date": "2026-11-26", "requests_from": "records", "placements": list(placements),
                    "requests": {}, "sizes": {}}
        return pl.PlanRecord(7, pl.content_hash(document), rec.created_at, "li", "test", rec.created_at.date(), "",
                             ("finance",), document)

    assert pl.plan_holds_records(record(base), "finance", [rec]) == []
    assert pl.plan_holds_records(record({**base, "zones": [["az1", 1], ["az2", 1]]}), "finance", [rec]) == [
        f"it places finance/ledger (primary) of request {rid} on unicom (CZ-2025-01) az1:1 az2:1, approved on "
        "unicom (CZ-2025-01) az1:2"]
    assert pl.plan_holds_records(record({**base, "vcpu": 8}), "finance", [rec]) == [
        f"it sizes finance/ledger (primary) of request {rid} at 8 vCPU / 8 GB RAM / 100 GB disk, approved at 4 / 8 / 100"]
    assert pl.plan_holds_records(record({**base, "provider": "telecom", "contract": "CZ-2025-02"}), "finance",
                                 [rec]) == [
        f"it places finance/ledger (primary) of request {rid} on telecom (CZ-2025-02) az1:2, approved on "
        "unicom (CZ-2025-01) az1:2"]
    assert pl.plan_holds_records(record(base, {**base, "role": "standby", "provider": "telecom"}), "finance",
                                 [rec]) == [
        "it places finance/ledger (standby) on telecom (CZ-2025-01) az1:2, which was not approved"]
    # another department's placements are not this department's business
    assert pl.plan_holds_records(record(base, {**base, "department": "health"}), "finance", [rec]) == []
