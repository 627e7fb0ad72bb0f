"""``yunshang.openstack.capacity`` and ``yunshang capacity show`` against the real devcloud.

Numbers are compared with the catalog (the devcloud reports each catalog zone's
figures at scale 1) and with Placement read directly. One test stops an operator's
nova-api by its recorded PID and restores it afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from yunshang.capacity import DEPARTMENT_TAG_PREFIX, PROJECT_TAG, project_name
from yunshang.openstack import connect
from yunshang.openstack.capacity import read_all, read_operator_snapshot

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "prefecture"


@pytest.fixture(scope="module")
def catalog():
    from yunshang.catalog import load_catalog

    return load_catalog(str(CATALOG))


def _provider(catalog, cloud):
    return next(p for p in catalog.providers if p.cloud == cloud)


def test_snapshot_zones_match_catalog(devcloud, catalog):
    # departments=(): no quota reads here (the shared devcloud may hold many tagged projects of other sessions)
    snaps = read_all(catalog, devcloud.clouds_file, devcloud.operators, departments=())
    assert [s.provider for s in snaps] == [p.name for p in catalog.providers if p.cloud in devcloud.operators]
    for s in snaps:
        assert s.ok, s.error
        prov = _provider(catalog, s.provider)
        got = {(z.zone, z.resource_class): z for z in s.zones}
        for zone in prov.zones:
            vcpu, mem, disk = got[(zone.name, "VCPU")], got[(zone.name, "MEMORY_MB")], got[(zone.name, "DISK_GB")]
            assert (vcpu.total, mem.total, disk.total) == (zone.vcpu, zone.ram_gb * 1024, zone.disk_gb)
            assert vcpu.allocation_ratio == pytest.approx(zone.overcommit.vcpu)
            assert mem.allocation_ratio == pytest.approx(zone.overcommit.ram_gb)
            assert mem.reserved == 512
            assert vcpu.capacity == pytest.approx(zone.vcpu * zone.overcommit.vcpu)
        assert {z.zone for z in s.zones} == {z.name for z in prov.zones}


def _connect_scoped(devcloud, op, project_id, tmp_path):
    """The operator's admin user, scoped to ``project_id`` (its own clouds.yaml entry)."""
    import yaml

    entry = yaml.safe_load(Path(devcloud.clouds_file).read_text())["clouds"][op]
    auth = {k: v for k, v in entry["auth"].items() if k not in ("project_name", "project_domain_name")}
    f = tmp_path / "scoped.yaml"
    f.write_text(yaml.safe_dump({"clouds": {"scoped": dict(entry, auth=dict(auth, project_id=project_id))}}))
    return connect("scoped", str(f))


def test_department_quotas_and_instances(devcloud, catalog, tmp_path):
    """A tagged department project with a server in az2: quota limits + usage and instances per zone."""
    op = devcloud.operators[0]
    admin = connect(op, devcloud.clouds_file)
    dept = f"captest{uuid.uuid4().hex[:6]}"
    project = admin.identity.create_project(name=project_name(dept), domain_id="default",
                                            tags=[PROJECT_TAG, DEPARTMENT_TAG_PREFIX + dept, "mlps:3"])
    try:
        admin.compute.update_quota_set(project.id, cores=6, ram=4096, instances=3)
        admin.network.update_quota(project.id, networks=2, ports=10)
        admin.block_storage.update_quota_set(project.id, gigabytes=15)
        net = admin.network.create_network(name=f"n-{dept}", project_id=project.id)
        admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.88.0.0/24", project_id=project.id)
        flavor = admin.compute.find_flavor("m1.tiny")
        image = admin.image.find_image("cirros")
        # boot as the project's admin-scoped connection: an admin session scoped to the new project
        admin.identity.assign_project_role_to_user(project, admin.identity.find_user("admin"),
                                                   admin.identity.find_role("admin"))
        scoped = _connect_scoped(devcloud, op, project.id, tmp_path)
        server = scoped.compute.create_server(name=f"s-{dept}", flavor_id=flavor.id, image_id=image.id,
                                              networks=[{"uuid": net.id}], availability_zone="az2")
        scoped.compute.wait_for_server(server, status="ACTIVE", wait=480, interval=2)

        snap = read_operator_snapshot(_provider(catalog, op), devcloud.clouds_file, departments=(dept,))
        assert snap.ok, snap.error
        q = {(x.service, x.resource): x for x in snap.quotas}
        assert {x.department for x in snap.quotas} == {dept}
        assert {x.project_id for x in snap.quotas} == {project.id}
        assert (q["compute", "cores"].limit, q["compute", "cores"].in_use) == (6, 1)
        assert (q["compute", "instances"].limit, q["compute", "instances"].in_use) == (3, 1)
        assert q["compute", "ram"].in_use == flavor.ram
        assert (q["network", "network"].limit, q["network", "network"].in_use) == (2, 1)
        assert q["network", "port"].in_use >= 1
        assert q["volume", "gigabytes"].limit == 15
        inst = dict(snap.instances)
        # the devcloud is shared with other test sessions booting servers: no exact delta here
        assert admin.compute.get_server(server.id).availability_zone == "az2"
        assert inst.get("az2", 0) >= 1 and set(inst) <= {"az1", "az2"}
        az2_vcpu = next(z for z in snap.zones if z.zone == "az2" and z.resource_class == "VCPU")
        assert az2_vcpu.used >= 1
        scoped.compute.delete_server(server)
        scoped.compute.wait_for_delete(server, wait=240)
    finally:
        for s in admin.compute.servers(all_projects=True, project_id=project.id):
            admin.compute.delete_server(s)
            admin.compute.wait_for_delete(s, wait=240)
        for p in admin.network.ports(project_id=project.id):
            admin.network.delete_port(p, ignore_missing=True)
        for n in admin.network.networks(project_id=project.id):
            admin.network.delete_network(n, ignore_missing=True)
        admin.identity.delete_project(project)


def test_unknown_cloud_is_reported_not_raised(devcloud, catalog, tmp_path):
    prov = _provider(catalog, devcloud.operators[0])
    empty = tmp_path / "clouds.yaml"
    empty.write_text("clouds: {}\n")
    snap = read_operator_snapshot(prov, str(empty))
    assert not snap.ok and prov.cloud in snap.error and "not defined" in snap.error


def _capacity_cli(devcloud, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return subprocess.run([sys.executable, "-m", "cli.main", "capacity", "show", "--catalog", str(CATALOG),
                           "--clouds", devcloud.clouds_file, *args], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=300)


def test_cli_json_shows_real_placement_numbers(devcloud, catalog):
    ops = []
    for o in devcloud.operators:
        ops += ["--operator", o]
    r = _capacity_cli(devcloud, *ops, "--output", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for o in data["operators"]:
        assert o["ok"], o["error"]
        prov = _provider(catalog, o["operator"])
        for z in prov.zones:
            assert o["zones"][z.name]["VCPU"]["total"] == z.vcpu
            assert o["zones"][z.name]["VCPU"]["capacity"] == pytest.approx(z.vcpu * z.overcommit.vcpu)


def test_broken_operator_marked_others_reported(devcloud, catalog):
    """Stop one operator's nova-api (by the PID the devcloud recorded); the other operator is still
    reported, the broken one is marked with the reason; then nova-api is restored."""
    from yunshang.devcloud import procs

    victim, other = devcloud.operators[0], devcloud.operators[1]
    dc = devcloud.control
    name = f"{victim}/nova_api"
    pid = procs.running_pid(dc.dir, name)
    assert pid, f"{name} is not running"
    try:
        assert procs.stop(dc.dir, name)
        snaps = {s.provider: s for s in read_all(catalog, devcloud.clouds_file, [victim, other], departments=())}
        assert not snaps[victim].ok
        assert "nova" in snaps[victim].error and "cannot connect" in snaps[victim].error
        assert snaps[other].ok and snaps[other].zones
        r = _capacity_cli(devcloud, "--operator", victim, "--operator", other)
        assert r.returncode == 4
        lines = r.stdout.splitlines()
        assert any(line.startswith(victim) and "UNREACHABLE" in line for line in lines)
        assert any(line.startswith(other) and "VCPU" in line for line in lines)
    finally:
        t0 = time.monotonic()
        dc.restore_operator(victim)
        print(f"{name} restored in {time.monotonic() - t0:.1f} s")
    assert read_operator_snapshot(_provider(catalog, victim), devcloud.clouds_file, departments=()).ok
