"""The takeover drill for real on the devcloud: telecom's keystone and nova-api are stopped (by recorded
PID), natural-resources' tenant is re-created on unicom through the SDK engine, telecom is restored, and
nothing was deleted there. Run with YUNSHANG_DEVCLOUD_KEEP=1 while developing."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.cloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "drilltest-"               # this module's own department (tests/own_catalog.py), never the sample's
DEPT = PREFIX + "natural-resources"  # primary telecom, backup unicom, level 3
CATALOG = ""                        # the module's own catalog, made by the autouse fixture below


@pytest.fixture(scope="module", autouse=True)
def own_catalog_dir(tmp_path_factory):
    from tests.own_catalog import own_catalog

    global CATALOG
    CATALOG = str(own_catalog(tmp_path_factory.mktemp("catalog") / "prefecture", PREFIX,
                              (DEPT.removeprefix(PREFIX),)))
    return CATALOG


def y(args, codes=(0,)):
    r = CliRunner().invoke(cli, args, env={"YUNSHANG_CATALOG": CATALOG}, catch_exceptions=False)
    assert r.exit_code in codes, r.output
    return r


def _cleanup(clouds):
    from yunshang.openstack.tenant import destroy_tenant

    for op in ("telecom", "unicom"):
        destroy_tenant(op, op, DEPT, clouds)


def test_drill_moves_the_tenant_to_the_backup_and_leaves_a_intact(devcloud, tmp_path, monkeypatch):
    from yunshang.openstack import connect

    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", devcloud.clouds_file)
    clouds = devcloud.clouds_file
    _cleanup(clouds)
    db = "sqlite:///" + str(tmp_path / "l.db")
    req = tmp_path / "nr.yaml"
    req.write_text(yaml.safe_dump({"department": DEPT, "title": "drill", "requests": [
        {"name": "nr-db", "template": "web-standard", "size": "small", "count": 1, "dr": True},
        {"name": "nr-portal", "template": "web-standard", "size": "small", "count": 1}]}))
    from tests.lifecycle.people import run_to_approved

    rid = run_to_approved(y, db, str(req), clouds)
    y(["request", "--db", db, "configure", rid, "--engine", "sdk", "--clouds", clouds,
       "--os-cloud", "person-center-engineer"])
    evidence = tmp_path / "drill.json"
    try:
        r = y(["takeover", "drill", "--from", "telecom", "--to", "unicom", "--clouds", clouds, "--db", db,
               "--evidence", str(evidence), "--os-cloud", "person-center-engineer"])
        ev = json.loads(evidence.read_text())
        for st in ev["steps"]:                       # figures for the record (visible with -s)
            print(f"drill step {st['seconds']:8.1f} s  {st['step']}: {st.get('verified', '')}")
        print(f"drill total {ev['total_seconds']:.1f} s vs RTO {ev['rto_seconds']} s")
        names = [s["step"] for s in ev["steps"]]
        assert names == [f"inventory {DEPT} on telecom", "take telecom's API away (keystone, nova_api)",
                         f"re-create {DEPT} on unicom", f"verify {DEPT} on unicom", "restore telecom",
                         f"check {DEPT} untouched on telecom"]
        assert all(s["ok"] and s["seconds"] >= 0 for s in ev["steps"])
        assert "API refuses" in ev["steps"][1]["verified"]
        assert {p["process"] for p in ev["stopped"]} == {"telecom/keystone", "telecom/nova_api"}
        assert ev["steps"][3]["verified"].startswith("no drift")
        assert ev["steps"][5]["verified"] == "nothing deleted on telecom"
        [move] = ev["plan"]["moves"]
        assert move["to_operator"] == "unicom" and {d["how"] for d in move["data"]} == {"promote-standby",
                                                                                      "restore-from-backup"}
        # on unicom now: the standby copy of nr-db and a re-created nr-portal
        conn = connect("unicom", clouds)
        pid = next(iter(conn.identity.projects(name=f"dept-{DEPT}"))).id
        names_b = sorted(s.name for s in conn.compute.servers(all_projects=True, project_id=pid))
        assert len(names_b) == 2 and any("nr-portal" in n for n in names_b), names_b
        # telecom answers again and still has its primaries
        conn_a = connect("telecom", clouds)
        pid_a = next(iter(conn_a.identity.projects(name=f"dept-{DEPT}"))).id
        assert len(list(conn_a.compute.servers(all_projects=True, project_id=pid_a))) == 2
        log = json.loads(y(["request", "--db", db, "log", "--verify", "--os-cloud", "person-center-auditor",
                            "-o", "json"]).stdout)
        assert log[-1]["action"] == "takeover-drill" and log[-1]["actor"].startswith("center-engineer (keystone:")
        assert "total" in r.stdout
    finally:
        _cleanup(clouds)
