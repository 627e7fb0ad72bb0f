"""Bad input and partial failure against the devcloud: refused credentials, live admission
refusal, an apply that fails part-way (journal) finished by destroy, and adopting a hand-made project."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from yunshang.errors import QuotaExceeded
from yunshang.openstack.tenant import (ApplyFailed, Journal, admit_live, apply_tenant, destroy_tenant, find_project,
                                       project_connection)

pytestmark = [pytest.mark.cloud, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CATALOG = Path(__file__).parent / "catalog"


def test_refused_credentials_one_line_nothing_created(devcloud, tmp_path, admin, plan_db):
    clouds = yaml.safe_load(Path(devcloud.clouds_file).read_text())
    clouds["clouds"]["telecom"]["auth"]["password"] = "expired-or-wrong"
    bad = tmp_path / "clouds.yaml"
    bad.write_text(yaml.safe_dump(clouds))
    r = CliRunner().invoke(cli, ["tenant", "apply", "ytest", "--operator", "telecom", "--catalog", str(CATALOG),
                                 "--date", "2026-12-01", "--clouds", str(bad), "--state-dir", str(tmp_path),
                                 "--db", plan_db])
    assert r.exit_code == 4
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "credentials refused" in lines[0] and "expired-or-wrong" not in r.output
    assert not (tmp_path / "journal").exists()


def test_live_admission_refuses_with_zone_resource_amount(devcloud, ytest_spec, tmp_path):
    huge = dataclasses.replace(ytest_spec, servers=tuple(dataclasses.replace(s, vcpu=100000)
                                                         for s in ytest_spec.servers))
    with pytest.raises(QuotaExceeded) as e:
        admit_live(huge, devcloud.clouds_file, ledger_dir=tmp_path)
    msg = str(e.value)
    assert "zone az1: vcpu needs 200000" in msg and "short by" in msg
    # and a fitting spec is admitted against the same live read, its reservation recorded then released
    h = admit_live(ytest_spec, devcloud.clouds_file, ledger_dir=tmp_path)
    assert h.reserved["az1"]["vcpu"] == 2
    h.release()


@pytest.fixture()
def broken_image(admin, tmp_path):
    """A real, deactivated Glance image: Nova refuses to boot from it (a genuine mid-apply failure)."""
    img_file = tmp_path / "img.raw"
    img_file.write_bytes(b"\0" * 1024 * 1024)
    img = admin.image.create_image(name="yt-deactivated", filename=str(img_file), disk_format="raw",
                                   container_format="bare", visibility="public", wait=True)
    admin.image.deactivate_image(img)
    yield img
    admin.image.reactivate_image(img)
    admin.image.delete_image(img)


def test_failed_apply_leaves_journal_and_destroy_finishes(devcloud, tenant_catalog, tenant_plan, tmp_path,
                                                         broken_image, admin):
    from yunshang.tenant import tenant_spec

    cat = dataclasses.replace(tenant_catalog, templates={
        k: dataclasses.replace(t, image="yt-deactivated") for k, t in tenant_catalog.templates.items()})
    spec = tenant_spec(cat, tenant_plan, "zbackup", "unicom")
    spec = dataclasses.replace(spec, cloud="telecom", operator="telecom")  # same cloud as the others' tests
    destroy_tenant("telecom", "telecom", "zbackup", devcloud.clouds_file, state=tmp_path)
    try:
        with pytest.raises(ApplyFailed, match="recorded in"):
            apply_tenant(spec, devcloud.clouds_file, state=tmp_path)
        j = Journal("telecom", "zbackup", tmp_path / "journal").read()
        assert j["status"] == "failed"
        kinds = {e["kind"] for e in j["created"]}
        assert {"project", "network", "subnet", "router", "port"} <= kinds
        assert find_project(admin, "dept-zbackup") is not None
        plan = destroy_tenant("telecom", "telecom", "zbackup", devcloud.clouds_file, state=tmp_path)
        assert "project" in {c.kind for c in plan}
        assert find_project(admin, "dept-zbackup") is None
        assert not Journal("telecom", "zbackup", tmp_path / "journal").path.exists()
    finally:
        destroy_tenant("telecom", "telecom", "zbackup", devcloud.clouds_file, state=tmp_path)


@pytest.fixture()
def hand_made_project(admin):
    """A brownfield project made by hand (no yunshang markers): network, subnet, group + rules, a server."""
    name = "legacy-gis"
    old = find_project(admin, name)
    if old is not None:
        _delete_project(admin, old)
    p = admin.identity.create_project(name=name, description="国土局 GIS (pre-cloud)", domain_id="default")
    me = admin.current_user_id
    admin.identity.assign_project_role_to_user(p, me, admin.identity.find_role("admin"))
    pc = project_connection(admin, p.id, p.name)
    net = pc.network.create_network(name="gis-net")
    pc.network.create_subnet(network_id=net.id, name="gis-subnet", cidr="192.168.77.0/24", ip_version=4)
    sg = pc.network.create_security_group(name="gis-sg")
    pc.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                          port_range_min=8080, port_range_max=8080, remote_ip_prefix="10.0.0.0/8")
    flavor = [f for f in admin.compute.flavors(is_public=None) if f.name == "m1.tiny"][0]
    image = next(iter(admin.image.images(name="cirros")))
    port = pc.network.create_port(network_id=net.id, name="gis-01-port", security_group_ids=[sg.id])
    srv = pc.compute.create_server(name="gis-01", flavor_id=flavor.id, image_id=image.id,
                                   networks=[{"port": port.id}], availability_zone="az1")
    pc.compute.wait_for_server(srv, wait=300)
    yield p
    _delete_project(admin, p)


def _delete_project(admin, p):
    for s in admin.compute.servers(all_projects=True, project_id=p.id):
        admin.compute.delete_server(s)
        admin.compute.wait_for_delete(s, wait=300)
    for port in admin.network.ports(project_id=p.id):
        if port.device_owner in ("", None) or port.device_owner.startswith("compute:"):
            admin.network.delete_port(port)
    for g in admin.network.security_groups(project_id=p.id):
        admin.network.delete_security_group(g)
    for n in admin.network.networks(project_id=p.id):
        admin.network.delete_network(n)
    admin.identity.delete_project(p)


def test_adopt_hand_made_project(devcloud, hand_made_project, tmp_path):
    out = tmp_path / "adopted"
    r = CliRunner().invoke(cli, ["tenant", "adopt", "--operator", "telecom", "--project", "legacy-gis",
                                 "--clouds", devcloud.clouds_file, "--out", str(out), "--output", "json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    dept = yaml.safe_load((out / "departments" / "legacy-gis.yaml").read_text())
    assert dept["name"] == "legacy-gis"
    assert dept["requests"] == [{"name": "gis", "template": "adopted-legacy-gis", "size": "c1r1d1", "count": 1,
                                 "ha": False}]
    assert dept["contracts"][0]["provider"] == "telecom"
    tpl = yaml.safe_load((out / "templates" / "adopted-legacy-gis.yaml").read_text())
    assert {"protocol": "tcp", "remote_cidr": "10.0.0.0/8", "port_min": 8080, "port_max": 8080} in tpl["ingress"]
    assert tpl["sizes"] == {"c1r1d1": {"vcpu": 1, "ram_gb": 1, "disk_gb": 1}}
    imports = json.loads((out / "legacy-gis.telecom.import.json").read_text())
    by = {(x["type"], x["name"]): x["id"] for x in imports["resources"]}
    assert by[("openstack:identity/project:Project", "legacy-gis")] == hand_made_project.id
    assert ("openstack:compute/instance:Instance", "gis-01") in by
    assert ("openstack:networking/subnet:Subnet", "gis-subnet") in by
    assert ("openstack:networking/port:Port", "gis-01-port") in by
    assert summary["import_resources"] == len(imports["resources"])
    # the department file is in catalog format: it loads into a copy of the test catalog
    cat_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG, cat_dir)
    dept["contracts"][0]["ceiling_cny_per_month"] = 1000
    (cat_dir / "departments" / "legacy-gis.yaml").write_text(yaml.safe_dump(dept, allow_unicode=True))
    shutil.copy(out / "templates" / "adopted-legacy-gis.yaml", cat_dir / "templates")
    from yunshang.catalog import load_catalog

    cat = load_catalog(cat_dir)
    assert cat.department("legacy-gis").requests[0].count == 1
