"""`yunshang request ...` end to end through click, on SQLite and on the real PostgreSQL server."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")
REQ = os.path.join(ROOT, "examples", "requests", "health-vaccine.yaml")


@pytest.fixture(autouse=True)
def _people(people_clouds, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", people_clouds)


def run(db, *args, ok=True):
    r = CliRunner().invoke(cli, ["request", "--db", db, *args], env={"YUNSHANG_CATALOG": CATALOG},
                           catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_submit_review_approve_and_the_log(store_url):
    out = json.loads(run(store_url, "submit", REQ, "--os-cloud", "person-health-it", "-o", "json").output)
    rid = str(out["id"])
    assert out["state"] == "submitted" and out["department"] == "health"
    assert out["submitted_by"].startswith("health-it (keystone:")
    r = run(store_url, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26", ok=False)
    assert r.exit_code == 3 and "department head must endorse" in r.output
    r = run(store_url, "endorse", rid, "--os-cloud", "person-health-it", ok=False)   # a requester cannot
    assert r.exit_code == 2 and "may not request.endorse" in r.output
    run(store_url, "endorse", rid, "--os-cloud", "person-health-head")
    rev = json.loads(run(store_url, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26", "-o",
                         "json").output)
    assert rev["state"] == "reviewed" and rev["monthly_cost_cny"] > 0
    roles = {(p["request_name"], p["role"]) for p in rev["placements"]}
    assert ("vaccine-booking-db", "standby") in roles            # dr: a standby on the backup contract
    assert {p["contract"] for p in rev["placements"]} == {"WJ-2025-01", "WJ-2025-02"}
    text = run(store_url, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26").output
    assert "monthly cost:" in text and "WJ-2025-01" in text
    r = run(store_url, "approve", rid, "--os-cloud", "person-center-approver-1", ok=False)
    assert r.exit_code == 2 and "--reason" in r.output
    run(store_url, "approve", rid, "--os-cloud", "person-center-approver-1", "--reason", "winter campaign, within ceiling")
    r = run(store_url, "reject", rid, "--os-cloud", "person-center-approver-2", "--reason", "too late", ok=False)
    assert r.exit_code == 3 and "cannot reject a request that is approved" in r.output
    cap = json.loads(run(store_url, "capacity", "--os-cloud", "person-center-reviewer", "-o", "json").output)
    assert sum(c["reserved_vcpu"] for c in cap) == sum(p["vcpu"] for p in rev["placements"])
    log = json.loads(run(store_url, "log", "--os-cloud", "person-center-auditor", "--verify", "-o", "json").output)
    assert [e["action"] for e in log] == ["submit", "endorse", "review", "review", "approve", "save-plan"]
    assert log[-2]["actor"].startswith("center-approver-1 (keystone:") and log[-2]["before"]["state"] == "reviewed"
    assert log[-1]["actor"] == log[-2]["actor"] and log[-1]["after"]["source"] == f"request approve {rid}"  # its plan
    assert "audit chain intact (6 entries)" in run(store_url, "log", "--os-cloud", "person-center-auditor", "--verify").output
    listing = run(store_url, "list", "--os-cloud", "person-health-it").output
    assert "approved" in listing and "health" in listing
    assert "health" not in run(store_url, "list", "--os-cloud", "person-finance-it").output   # not theirs


def test_pulumi_engine_without_the_binary_fails_clearly_and_changes_nothing(store_url, monkeypatch, tmp_path):
    from tests.no_engine import no_engine_env

    env = no_engine_env(tmp_path)   # configure looks where `stack up` does: make pulumi's links, then PATH
    monkeypatch.setenv("YUNSHANG_PULUMI_DIR", env["YUNSHANG_PULUMI_DIR"])
    monkeypatch.setenv("PATH", env["PATH"])
    rid = str(json.loads(run(store_url, "submit", REQ, "--os-cloud", "person-health-it", "-o", "json").output)["id"])
    run(store_url, "endorse", rid, "--os-cloud", "person-health-head")
    run(store_url, "review", rid, "--os-cloud", "person-center-reviewer", "--date", "2026-11-26")
    run(store_url, "approve", rid, "--os-cloud", "person-center-approver-1", "--reason", "ok")
    r = run(store_url, "configure", rid, "--engine", "pulumi", "--os-cloud", "person-center-engineer", "--date", "2026-11-26",
            ok=False)
    assert r.exit_code == 6 and "pulumi" in r.output and r.output.count("\n") == 1
    assert json.loads(run(store_url, "show", rid, "--os-cloud", "person-health-it", "-o", "json").output)["state"] == "approved"


def test_bad_request_file_and_unknown_things(tmp_path):
    db = "sqlite:///" + str(tmp_path / "l.db")
    bad = tmp_path / "bad.yaml"
    bad.write_text("department: health\nrequests:\n  - {name: x, template: nope, size: medium, count: 1}\n")
    r = run(db, "submit", str(bad), "--os-cloud", "person-health-it", ok=False)
    assert r.exit_code == 2 and "bad.yaml: requests[0].template: unknown template 'nope'" in r.output
    bad.write_text("department: [\n")
    r = run(db, "submit", str(bad), "--os-cloud", "person-health-it", ok=False)
    assert r.exit_code == 2 and "YAML syntax" in r.output
    r = run(db, "approve", "42", "--os-cloud", "person-center-approver-1", "--reason", "b", ok=False)
    assert r.exit_code == 2 and "no request with id 42" in r.output
    logged = run(db, "log", "--os-cloud", "person-center-auditor").output
    assert logged.count("\n") == 2            # header + rule: nothing was recorded


def test_the_tool_offers_no_way_to_edit_the_log():
    r = CliRunner().invoke(cli, ["request", "--help"])
    commands = {line.split()[0] for line in r.output.split("Commands:")[1].splitlines() if line.strip()}
    assert commands == {"approve", "capacity", "configure", "endorse", "keep", "list", "log", "monitor", "publish", "reclaim",
                        "reclaim-confirm", "reject", "review", "show", "submit"}
    r = CliRunner().invoke(cli, ["request", "log", "--help"])
    assert "--verify" in r.output and "--delete" not in r.output and "--edit" not in r.output
