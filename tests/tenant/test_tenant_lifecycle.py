"""clean -> apply -> verify (no drift) -> apply again (no change) -> change a rule by hand ->
verify reports exactly that -> apply repairs -> cross-check with the Pulumi mock graph -> clean.

Against the devcloud: real Keystone, Nova (fake virt driver), Neutron, Cinder, Placement.
The tests in this module run in order and share one tenant (department `ytest` on `telecom`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang.openstack.tenant import project_connection, apply_tenant, destroy_tenant, find_project, verify_tenant
from yunshang.tenant import normalise_rule, rule_label

CATALOG = Path(__file__).parent / "catalog"

pytestmark = [pytest.mark.cloud, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _destroy(devcloud, state):
    destroy_tenant("telecom", "telecom", "ytest", devcloud.clouds_file, state=state)


@pytest.fixture(scope="module", autouse=True)
def clean_before_and_after(devcloud, state):
    _destroy(devcloud, state)
    yield
    _destroy(devcloud, state)


def test_apply_from_clean(devcloud, ytest_spec, state, admin):
    said = []
    res = apply_tenant(ytest_spec, devcloud.clouds_file, say=said.append, state=state)
    assert res.applied
    assert said[0].startswith("plan for ytest.telecom")           # plan printed before anything ran
    assert res.remaining is not None and res.remaining.clean, res.remaining.as_dict()
    p = find_project(admin, "dept-ytest")
    assert set(p.tags) == {"yunshang", "department:ytest", "contract:YT-2026-01", "mlps:3"}
    servers = {s.name: s for s in admin.compute.servers(all_projects=True, project_id=p.id)}
    assert sorted(servers) == ["ytest-db-01", "ytest-portal-01", "ytest-portal-02"]
    assert {s.name: s.availability_zone for s in servers.values()} == {
        "ytest-db-01": "az1", "ytest-portal-01": "az1", "ytest-portal-02": "az2"}
    assert all(s.status == "ACTIVE" and s.metadata.get("managed-by") == "yunshang" for s in servers.values())


def test_verify_shows_no_drift(devcloud, ytest_spec):
    assert verify_tenant(ytest_spec, devcloud.clouds_file).clean


def test_apply_again_changes_nothing(devcloud, ytest_spec, state):
    res = apply_tenant(ytest_spec, devcloud.clouds_file, state=state)
    assert not res.applied
    assert [c for c in res.changes if c.action in ("create", "update", "delete")] == []


def test_cli_verify_and_dry_run_json(devcloud, state, plan_db):
    base = ["--catalog", str(CATALOG), "--date", "2026-12-01", "--clouds", devcloud.clouds_file, "--db", plan_db]
    r = CliRunner().invoke(cli, ["tenant", "verify", "ytest", "--operator", "telecom", *base])
    assert r.exit_code == 0 and "no drift" in r.output, r.output
    r = CliRunner().invoke(cli, ["tenant", "apply", "ytest", "--operator", "telecom", "--dry-run", "--output", "json",
                                 "--state-dir", str(state), *base])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["dry_run"] and [c for c in doc["changes"] if c["action"] != "keep-extra"] == []


def test_hand_change_reported_exactly_then_repaired(devcloud, ytest_spec, state, admin, plan_db):
    p = find_project(admin, "dept-ytest")
    (sg,) = [g for g in admin.network.security_groups(project_id=p.id) if g.name == "dept-ytest-tiny-web"]
    https = [r for r in sg.security_group_rules if r["direction"] == "ingress" and r.get("port_range_min") == 443]
    assert len(https) == 1
    admin.network.delete_security_group_rule(https[0]["id"])
    admin.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                             protocol="tcp", port_range_min=1, port_range_max=65535,
                                             remote_ip_prefix="0.0.0.0/0", project_id=p.id)
    drift = verify_tenant(ytest_spec, devcloud.clouds_file)
    removed = rule_label(sg.name, normalise_rule("ingress", "tcp", 443, 443, "0.0.0.0/0"))
    added = rule_label(sg.name, normalise_rule("ingress", "tcp", None, None, "0.0.0.0/0"))
    assert [i[1] for i in drift.missing] == [removed]
    assert [i[1] for i in drift.extra] == [added]           # 1-65535 read back and shown as "any"
    assert drift.different == ()
    r = CliRunner().invoke(cli, ["tenant", "verify", "ytest", "--operator", "telecom", "--catalog", str(CATALOG),
                                 "--date", "2026-12-01", "--clouds", devcloud.clouds_file, "--output", "json",
                                 "--db", plan_db])
    assert r.exit_code == 1 and json.loads(r.output)["clean"] is False

    res = apply_tenant(ytest_spec, devcloud.clouds_file, state=state)
    assert sorted((c.action, c.name) for c in res.changes if c.action != "keep-extra") == [
        ("create", removed), ("delete", added)]
    assert res.remaining.clean
    assert verify_tenant(ytest_spec, devcloud.clouds_file).clean


def test_pulumi_mock_graph_equals_what_verify_reads_back(devcloud, ytest_spec):
    """The two engines describe the same tenant: (type, name, key inputs) of the program under mocks
    equals the canonical read-back of what the SDK engine built."""
    from stacks.graph import declare_tenant, graph_inventory
    from yunshang.openstack.tenant import read_inventory

    declared = graph_inventory(declare_tenant(ytest_spec))
    found = read_inventory(ytest_spec, devcloud.clouds_file)
    assert declared == found, {"only_declared": sorted(declared - found), "only_found": sorted(found - declared)}


def test_hand_made_server_is_extra_and_kept(devcloud, ytest_spec, state, admin):
    p = find_project(admin, "dept-ytest")
    pc = project_connection(admin, p.id, p.name)
    (flavor,) = [f for f in admin.compute.flavors(is_public=None) if f.name == "m1.tiny"]
    image = next(iter(admin.image.images(name="cirros")))
    (net,) = list(admin.network.networks(project_id=p.id, name="dept-ytest-net"))
    srv = pc.compute.create_server(name="hand-made", flavor_id=flavor.id, image_id=image.id,
                                   networks=[{"uuid": net.id}], availability_zone="az1")
    pc.compute.wait_for_server(srv, wait=300)
    try:
        drift = verify_tenant(ytest_spec, devcloud.clouds_file)
        assert ("server", "hand-made") in {(i[0], i[1]) for i in drift.extra}
        res = apply_tenant(ytest_spec, devcloud.clouds_file, state=state)
        assert ("keep-extra", "server", "hand-made") in {(c.action, c.kind, c.name) for c in res.changes}
        assert pc.compute.find_server("hand-made") is not None     # never deleted what it did not create
        # destroy keeps it, and therefore the project
        plan = destroy_tenant("telecom", "telecom", "ytest", devcloud.clouds_file, dry_run=True, state=state)
        assert ("server", "hand-made") not in {(c.kind, c.name) for c in plan}
        assert "project" not in {c.kind for c in plan}
    finally:
        pc.compute.delete_server(srv)
        pc.compute.wait_for_delete(srv, wait=300)


def test_destroy_cleans_up(devcloud, state, admin):
    destroy_tenant("telecom", "telecom", "ytest", devcloud.clouds_file, state=state)
    assert find_project(admin, "dept-ytest") is None
    assert not [f for f in admin.compute.flavors(is_public=None) if f.name.startswith("dept-ytest.")]
    assert not [u for u in admin.identity.users() if u.name.startswith("ytest.")]
