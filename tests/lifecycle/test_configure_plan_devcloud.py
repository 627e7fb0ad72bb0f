"""Against the devcloud: a request of another department cannot move servers already approved.

A (department ypp-human-resources-social-security) is approved: its approval records plan P_A.
B (another department, ypp-emergency-management) is then submitted, reviewed against the live
capacity and approved, and a `plan --save` of B's department is recorded too. `request configure A`
then builds P_A (the latest plan covering A's department, the one `tenant verify` and `stack up`
build by default): A's servers sit exactly where A was approved, and `tenant verify` of that
default plan finds no drift. The departments are this module's own (prefix ypp-)."""
from __future__ import annotations

import collections
import json

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.cloud

PREFIX = "ypp-"
A, B = PREFIX + "human-resources-social-security", PREFIX + "emergency-management"
CATALOG = ""


@pytest.fixture(scope="module", autouse=True)
def own_catalog_dir(tmp_path_factory):
    from tests.own_catalog import own_catalog

    global CATALOG
    CATALOG = str(own_catalog(tmp_path_factory.mktemp("catalog") / "prefecture", PREFIX,
                              (A.removeprefix(PREFIX), B.removeprefix(PREFIX))))
    return CATALOG


def y(args, code=0):
    r = CliRunner().invoke(cli, args, env={"YUNSHANG_CATALOG": CATALOG}, catch_exceptions=False)
    assert r.exit_code == code, r.output
    return r


def cleanup(clouds):
    from yunshang.openstack.tenant import destroy_tenant

    for dept in (A, B):
        for op in ("telecom", "unicom"):
            destroy_tenant(op, op, dept, clouds)


def _request(tmp_path, dept, entries):
    f = tmp_path / f"{dept}.yaml"
    f.write_text(yaml.safe_dump({"department": dept, "title": f"{dept} plan test", "requests": entries}))
    return str(f)


def test_another_departments_request_does_not_move_approved_servers(devcloud, tmp_path, monkeypatch):
    from tests.lifecycle.people import run_to_approved
    from yunshang import plans as pl
    from yunshang.openstack import connect
    from yunshang.store import open_store

    clouds = devcloud.clouds_file
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", clouds)
    db = "sqlite:///" + str(tmp_path / "lifecycle.db")
    cleanup(clouds)                                          # leftovers of an interrupted run
    try:
        a = run_to_approved(y, db, _request(tmp_path, A, [{"name": "hr-app", "template": "web-standard",
                                                            "size": "small", "count": 2, "ha": True}]),
                            clouds, live=True)
        with open_store(db) as s:
            plan_a = pl.approval_plan(s, int(a))
            approved_a = s.get(int(a)).placements
        b = run_to_approved(y, db, _request(tmp_path, B, [{"name": "em-app", "template": "web-standard",
                                                            "size": "small", "count": 2, "ha": True}]),
                            clouds, live=True)
        y(["plan", "--catalog", CATALOG, "--save", "--department", B, "--db", db, "--clouds", clouds,
           "--os-cloud", "person-center-engineer"])
        with open_store(db) as s:
            assert s.latest_plan(A).id == plan_a.id and s.latest_plan(B).id != plan_a.id
            assert s.get(int(a)).placements == approved_a           # B's review and approval moved nothing of A
            assert int(b) != int(a)

        out = json.loads(y(["request", "--db", db, "configure", a, "--engine", "sdk", "--clouds", clouds,
                            "--os-cloud", "person-center-engineer", "-o", "json"]).stdout)
        assert out["state"] == "configured"
        with open_store(db) as s:
            entry = [e for e in s.audit_log(subject=f"request:{a}") if e.action == "configure"][-1]
        assert entry.after["plan"] == {"id": plan_a.id, "content_hash": plan_a.content_hash}
        # A's servers are where A was approved, zone by zone, on each operator
        for op in sorted({p.provider for p in approved_a}):
            want = collections.Counter()
            for p in approved_a:
                if p.provider == op:
                    want[p.zone] += p.instances
            conn = connect(op, clouds)
            project = conn.identity.find_project(f"dept-{A}")
            got = collections.Counter(s.availability_zone for s in
                                      conn.compute.servers(all_projects=True, project_id=project.id))
            assert got == want, (op, got, want)
            # the SDK engine's default plan for A is the same plan: no drift
            r = y(["tenant", "verify", A, "--operator", op, "--catalog", CATALOG, "--db", db, "--clouds", clouds,
                   "-o", "json"])
            assert json.loads(r.stdout)["missing"] == [], r.stdout
    finally:
        cleanup(clouds)
