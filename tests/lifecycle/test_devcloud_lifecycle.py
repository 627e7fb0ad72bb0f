"""Against the devcloud (real Keystone/Nova/Neutron/Cinder per operator): a request goes through
the lifecycle and is configured with the SDK engine; compliance checks a compliant and a deliberately
non-compliant tenant. Run with YUNSHANG_DEVCLOUD_KEEP=1 while developing."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.cloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "lctest-"       # this module's own departments (tests/own_catalog.py): never the sample's or the demo's
GOOD, BAD = PREFIX + "human-resources-social-security", PREFIX + "emergency-management"     # level 3 both
CATALOG = ""             # the module's own catalog, made by the autouse fixture below


@pytest.fixture(scope="module", autouse=True)
def own_catalog_dir(tmp_path_factory):
    from tests.own_catalog import own_catalog

    global CATALOG
    CATALOG = str(own_catalog(tmp_path_factory.mktemp("catalog") / "prefecture", PREFIX,
                              (GOOD.removeprefix(PREFIX), BAD.removeprefix(PREFIX))))
    return CATALOG


def y(args, ok=True, codes=(0,)):
    r = CliRunner().invoke(cli, args, env={"YUNSHANG_CATALOG": CATALOG}, catch_exceptions=False)
    if ok:
        assert r.exit_code in codes, r.output
    return r


def _lifecycle(db, clouds, tmp_path, dept, entries):
    f = tmp_path / f"{dept}.yaml"
    f.write_text(yaml.safe_dump({"department": dept, "title": f"{dept} devcloud test", "requests": entries}))
    from tests.lifecycle.people import run_to_approved

    rid = run_to_approved(y, db, str(f), clouds, live=True)
    out = json.loads(y(["request", "--db", db, "configure", rid, "--engine", "sdk", "--clouds", clouds,
                        "--os-cloud", "person-center-engineer", "-o", "json"]).stdout)
    assert out["state"] == "configured" and out["engine"] == "sdk"
    return rid, out


@pytest.fixture(scope="module")
def tenants(devcloud, tmp_path_factory):
    """GOOD: primary on unicom + dr standby on telecom. BAD: primary on telecom only, then tampered."""
    assert {"telecom", "unicom"} <= set(devcloud.operators)
    tmp = tmp_path_factory.mktemp("lc")
    db = "sqlite:///" + str(tmp / "lifecycle.db")
    clouds = devcloud.clouds_file
    cleanup(clouds)                      # leftovers of an interrupted run
    try:
        yield from _tenants(db, clouds, tmp)
    finally:
        cleanup(clouds)


def cleanup(clouds):
    from yunshang.openstack import connect
    from yunshang.openstack.tenant import destroy_tenant

    conn = connect("telecom", clouds)
    for p in conn.network.ports(name="no-sg-port"):
        conn.network.delete_port(p.id, ignore_missing=True)
    for dept, ops in ((GOOD, ("unicom", "telecom")), (BAD, ("telecom",))):
        for op in ops:
            destroy_tenant(op, op, dept, clouds)


def _tenants(db, clouds, tmp):
    from yunshang.openstack import connect

    good_id, good = _lifecycle(db, clouds, tmp, GOOD,
                               [{"name": "hr-web", "template": "web-standard", "size": "small", "count": 1, "dr": True}])
    bad_id, bad = _lifecycle(db, clouds, tmp, BAD,
                             [{"name": "em-web", "template": "web-standard", "size": "small", "count": 1}])
    conn = connect("telecom", clouds)
    project = next(iter(conn.identity.projects(name=f"dept-{BAD}")))
    group = next(g for g in conn.network.security_groups(project_id=project.id) if g.name != "default")
    rule = conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", protocol="tcp",
                                                   port_range_min=22, port_range_max=22,
                                                   remote_ip_prefix="0.0.0.0/0", ethertype="IPv4")
    net = next(iter(conn.network.networks(project_id=project.id)))
    port = conn.network.create_port(network_id=net.id, project_id=project.id, name="no-sg-port",
                                    port_security_enabled=False)
    try:
        yield {"db": db, "clouds": clouds, "good": (good_id, good), "bad": (bad_id, bad), "group": group.name}
    finally:
        conn.network.delete_port(port.id, ignore_missing=True)
        conn.network.delete_security_group_rule(rule.id, ignore_missing=True)


def test_configure_applied_the_tenants_through_the_sdk_engine(tenants):
    from yunshang.openstack import connect

    _, good = tenants["good"]
    assert {p["provider"] for p in good["placements"]} == {"unicom", "telecom"}
    for op in ("unicom", "telecom"):
        conn = connect(op, tenants["clouds"])
        project = next(iter(conn.identity.projects(name=f"dept-{GOOD}")))
        servers = list(conn.compute.servers(all_projects=True, project_id=project.id))
        assert len(servers) == 1, (op, [s.name for s in servers])
    os.environ["OS_CLIENT_CONFIG_FILE"] = tenants["clouds"]
    try:
        log = json.loads(y(["request", "--db", tenants["db"], "log", "--verify", "--os-cloud", "person-center-auditor",
                            "-o", "json"]).stdout)
    finally:
        os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
    configure = [e for e in log if e["action"] == "configure"]
    assert len(configure) == 2 and set(configure[0]["after"]["details"]) == {"unicom", "telecom"}


def test_compliance_passes_the_compliant_tenant(tenants, tmp_path):
    out = tmp_path / "evidence.json"
    r = y(["compliance", "check", "--clouds", tenants["clouds"], "--department", GOOD, "--operator", "telecom",
           "--operator", "unicom", "-o", "json", "--out", str(out)])
    ev = json.loads(out.read_text())
    [rep] = ev["reports"]
    assert rep["compliant"], [x for x in rep["results"] if x["status"] == "fail"]
    ids = {(x["id"], x["operator"]): x["status"] for x in rep["results"]}
    assert ids[("no-world-open-admin-port", "unicom")] == "pass"
    assert ids[("security-groups-on-ports", "telecom")] == "pass"
    assert ids[("audit-trail", "unicom")] == "pass"
    assert ids[("backup-dr-placement", "unicom")] == "pass"
    assert ids[("volumes-encrypted", "unicom")] == "not-applicable"
    assert ev["checked_at"] and r.exit_code == 0


def test_compliance_fails_the_tampered_tenant_with_what_and_how_to_fix(tenants):
    r = y(["compliance", "check", "--clouds", tenants["clouds"], "--department", BAD, "--operator", "telecom",
           "--operator", "unicom", "-o", "json"], ok=False)
    assert r.exit_code == 1 and f"not compliant: {BAD}" in r.output
    rep = json.loads(r.stdout)["reports"][0]
    failed = {x["id"]: x for x in rep["results"] if x["status"] == "fail"}
    assert set(failed) == {"no-world-open-admin-port", "security-groups-on-ports", "backup-dr-placement"}
    assert any(f"group {tenants['group']}" in f and "22" in f for f in failed["no-world-open-admin-port"]["found"])
    assert failed["security-groups-on-ports"]["found"] == ["port no-sg-port: port security disabled"]
    assert all(x["fix"] for x in failed.values())
    text = y(["compliance", "check", "--clouds", tenants["clouds"], "--department", BAD, "--operator", "telecom"],
             ok=False).output
    assert "FAIL" in text and f"fix {BAD}/telecom no-world-open-admin-port" in text
