"""Smoke suite against every devcloud operator (each its OWN OpenStack control plane:
own Keystone, endpoints and credentials; MariaDB and RabbitMQ shared with separate
databases/vhosts). Real API calls through openstacksdk via ``yunshang.openstack.connect``;
everything a test creates is deleted again.
"""
from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from yunshang.errors import CloudUnavailable
from yunshang.openstack import connect

ROOT = Path(__file__).resolve().parents[2]
OPERATORS = ("telecom", "unicom")
WAIT_SECONDS = 480   # generous: the shared devcloud may be building many servers for other sessions


def _wait(what: str, fn, timeout: float = WAIT_SECONDS, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module", params=OPERATORS)
def op(request, devcloud):
    if request.param not in devcloud.operators:
        pytest.fail(f"devcloud has no operator {request.param!r} (has {devcloud.operators})")
    return request.param


@pytest.fixture(scope="module")
def admin(op, devcloud):
    return connect(op, devcloud.clouds_file)


@pytest.fixture(scope="module")
def tenant(op, admin, devcloud, tmp_path_factory):
    """A project + member user on operator ``op``, and a connection as that user (its own clouds.yaml)."""
    tag = uuid.uuid4().hex[:8]
    project = admin.identity.create_project(name=f"smoke-{tag}", domain_id="default", description="smoke test")
    password = uuid.uuid4().hex
    user = admin.identity.create_user(name=f"smoke-{tag}", password=password, domain_id="default",
                                      default_project_id=project.id)
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    admin_auth = yaml.safe_load(Path(devcloud.clouds_file).read_text())["clouds"][op]
    clouds = tmp_path_factory.mktemp(f"smoke-{op}") / "clouds.yaml"
    entry = dict(admin_auth, auth=dict(admin_auth["auth"], username=user.name, password=password,
                                       project_name=project.name))
    clouds.write_text(yaml.safe_dump({"clouds": {f"{op}-smoke": entry}}))
    conn = connect(f"{op}-smoke", str(clouds))
    yield {"project": project, "user": user, "conn": conn, "tag": tag, "clouds": str(clouds), "password": password}
    _cleanup(admin, project.id)
    admin.identity.delete_user(user, ignore_missing=True)
    admin.identity.delete_project(project, ignore_missing=True)


def _cleanup(admin, project_id: str) -> None:
    """Delete everything in the project, in dependency order."""
    for s in admin.compute.servers(all_projects=True, project_id=project_id):
        admin.compute.delete_server(s, ignore_missing=True)
    for s in admin.compute.servers(all_projects=True, project_id=project_id):
        admin.compute.wait_for_delete(s, wait=120)
    for v in admin.block_storage.volumes(all_projects=True, project_id=project_id):
        if v.status != "in-use":
            admin.block_storage.delete_volume(v, ignore_missing=True)
    for f in admin.network.ips(project_id=project_id):
        admin.network.delete_ip(f, ignore_missing=True)
    for r in admin.network.routers(project_id=project_id):
        for p in admin.network.ports(device_id=r.id, device_owner="network:router_interface"):
            admin.network.remove_interface_from_router(r, port=p.id)
        admin.network.delete_router(r, ignore_missing=True)
    for p in admin.network.ports(project_id=project_id):
        admin.network.delete_port(p, ignore_missing=True)
    for n in admin.network.networks(project_id=project_id):
        admin.network.delete_network(n, ignore_missing=True)
    for g in admin.network.security_groups(project_id=project_id):
        if g.name != "default":
            admin.network.delete_security_group(g, ignore_missing=True)
    for i in admin.image.images(owner=project_id):
        admin.image.delete_image(i, ignore_missing=True)


def test_identity_project_user_role(admin, tenant):
    project, user = tenant["project"], tenant["user"]
    assert admin.identity.get_project(project.id).name == project.name
    roles = {a.role["id"] for a in admin.identity.role_assignments(user_id=user.id, scope_project_id=project.id)}
    assert admin.identity.find_role("member").id in roles
    # the member's own token is scoped to its project
    assert tenant["conn"].current_project_id == project.id


def test_quota_sets_with_usage(admin, tenant):
    pid = tenant["project"].id
    admin.compute.update_quota_set(pid, cores=8, ram=8192, instances=4)
    admin.network.update_quota(pid, networks=5, subnets=5, ports=20, routers=2, floating_ips=3,
                               security_groups=5, security_group_rules=50)
    admin.block_storage.update_quota_set(pid, gigabytes=20, volumes=4, snapshots=2)
    comp = admin.compute.get_quota_set(pid, usage=True)
    assert (comp.cores, comp.ram, comp.instances) == (8, 8192, 4)
    assert comp.usage["cores"] == 0
    net = admin.network.get_quota(pid, details=True)
    assert net.networks["limit"] == 5 and net.networks["used"] == 0
    vol = admin.block_storage.get_quota_set(pid, usage=True)
    assert (vol.gigabytes, vol.volumes) == (20, 4)
    assert vol.usage["gigabytes"] == 0


def test_flavor(admin, tenant):
    name = f"smoke-{tenant['tag']}"
    f = admin.compute.create_flavor(name=name, vcpus=1, ram=256, disk=1, is_public=True)
    try:
        assert any(x.id == f.id for x in tenant["conn"].compute.flavors())
    finally:
        admin.compute.delete_flavor(f)
    assert admin.compute.find_flavor(name) is None


def test_tenant_network_server_volume_flow(op, admin, tenant, devcloud, tmp_path):
    """network+subnet+router(gw), SG+rules, FIP, image upload, server ACTIVE on a real port, volume attach,
    quota usage and Placement usage reflecting the server."""
    c, pid, tag = tenant["conn"], tenant["project"].id, tenant["tag"]
    admin.compute.update_quota_set(pid, cores=8, ram=8192, instances=4)
    ext = admin.network.find_network("public") or next(admin.network.networks(is_router_external=True))
    assert ext.is_router_external

    net = c.network.create_network(name=f"net-{tag}")
    sub = c.network.create_subnet(network_id=net.id, name=f"sub-{tag}", ip_version=4, cidr="10.77.0.0/24")
    router = c.network.create_router(name=f"r-{tag}", external_gateway_info={"network_id": ext.id})
    c.network.add_interface_to_router(router, subnet=sub.id)
    gw = c.network.get_router(router.id).external_gateway_info
    assert gw["network_id"] == ext.id and gw["external_fixed_ips"]

    sg = c.network.create_security_group(name=f"sg-{tag}", description="smoke")
    c.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                         port_range_min=22, port_range_max=22, remote_ip_prefix="10.0.0.0/8",
                                         ethertype="IPv4")
    c.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="icmp",
                                         ethertype="IPv4")
    rules = list(c.network.security_group_rules(security_group_id=sg.id, direction="ingress"))
    assert {r.protocol for r in rules} >= {"tcp", "icmp"}

    fip = c.network.create_ip(floating_network_id=ext.id)
    assert fip.floating_ip_address

    img_file = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(img_file), "32M"], check=True, capture_output=True)
    image = c.image.create_image(name=f"img-{tag}", filename=str(img_file), disk_format="qcow2",
                                 container_format="bare", visibility="private")
    image = _wait("image active", lambda: (i := c.image.get_image(image.id)).status == "active" and i)
    assert image.owner == pid

    port = c.network.create_port(network_id=net.id, security_groups=[sg.id])
    flavor = admin.compute.find_flavor("m1.tiny")
    server = c.compute.create_server(name=f"vm-{tag}", flavor_id=flavor.id, image_id=image.id,
                                     networks=[{"port": port.id}])
    server = c.compute.wait_for_server(server, status="ACTIVE", wait=WAIT_SECONDS, interval=2)
    assert server.status == "ACTIVE"
    bound = c.network.get_port(port.id)
    assert bound.device_id == server.id and bound.status == "ACTIVE"
    assert bound.binding_vif_type == "ovs" or bound.binding_vif_type is None  # admin-only attribute
    c.network.update_ip(fip, port_id=port.id)
    assert c.network.get_ip(fip.id).fixed_ip_address == bound.fixed_ips[0]["ip_address"]

    usage = admin.compute.get_quota_set(pid, usage=True).usage
    assert usage["instances"] == 1 and usage["cores"] == flavor.vcpus and usage["ram"] == flavor.ram

    # Placement: the server's allocation sits on the compute node it runs on
    host = admin.compute.get_server(server.id).hypervisor_hostname
    rp = next(admin.placement.resource_providers(name=host))
    alloc = admin.placement.get(f"/allocations/{server.id}").json()["allocations"]
    assert alloc[rp.id]["resources"]["VCPU"] == flavor.vcpus
    used = admin.placement.get(f"/resource_providers/{rp.id}/usages").json()["usages"]
    assert used["VCPU"] >= flavor.vcpus and used["MEMORY_MB"] >= flavor.ram

    vol = c.block_storage.create_volume(size=1, name=f"vol-{tag}")
    c.block_storage.wait_for_status(vol, status="available", wait=WAIT_SECONDS)
    c.compute.create_volume_attachment(server, volume=vol)
    c.block_storage.wait_for_status(vol, status="in-use", wait=WAIT_SECONDS)
    assert c.block_storage.get_volume(vol.id).attachments[0]["server_id"] == server.id
    assert admin.block_storage.get_quota_set(pid, usage=True).usage["gigabytes"] == 1
    c.compute.delete_volume_attachment(server, vol)
    c.block_storage.wait_for_status(vol, status="available", wait=WAIT_SECONDS)
    c.block_storage.delete_volume(vol)

    c.compute.delete_server(server)
    c.compute.wait_for_delete(server, wait=WAIT_SECONDS)
    assert admin.compute.get_quota_set(pid, usage=True).usage["instances"] == 0


def test_placement_inventory_matches_catalog(op, admin):
    """Every catalog zone of the operator is an availability zone with one compute node whose Placement
    inventory equals the catalog figures (x1 scale) and whose allocation ratios equal the overcommit."""
    from yunshang.catalog import load_catalog

    provider = next(p for p in load_catalog(str(ROOT / "examples" / "prefecture")).providers if p.cloud == op)
    hosts = {}
    for a in admin.compute.aggregates():
        if a.availability_zone:
            for h in a.hosts or []:
                hosts[h] = a.availability_zone
    by_zone = {}
    for rp in admin.placement.resource_providers():
        if rp.name in hosts:
            by_zone[hosts[rp.name]] = rp
    assert sorted(by_zone) == sorted(z.name for z in provider.zones)
    for z in provider.zones:
        inv = admin.placement.get(f"/resource_providers/{by_zone[z.name].id}/inventories").json()["inventories"]
        assert inv["VCPU"]["total"] == z.vcpu
        assert inv["MEMORY_MB"]["total"] == z.ram_gb * 1024
        assert inv["DISK_GB"]["total"] == z.disk_gb
        assert inv["VCPU"]["allocation_ratio"] == pytest.approx(z.overcommit.vcpu)
        assert inv["MEMORY_MB"]["allocation_ratio"] == pytest.approx(z.overcommit.ram_gb)
        assert inv["DISK_GB"]["allocation_ratio"] == pytest.approx(z.overcommit.disk_gb)
        assert inv["MEMORY_MB"]["reserved"] == 512
        usages = admin.placement.get(f"/resource_providers/{by_zone[z.name].id}/usages").json()["usages"]
        assert set(usages) >= {"VCPU", "MEMORY_MB", "DISK_GB"}


def test_credentials_do_not_cross_operators(op, devcloud, tenant, tmp_path):
    """Operator A's admin credentials and A's users are refused by operator B's Keystone."""
    others = [o for o in devcloud.operators if o != op]
    assert others, "needs at least two operators"
    clouds = yaml.safe_load(Path(devcloud.clouds_file).read_text())["clouds"]
    mine = clouds[op]
    crossed = {}
    for other in others:
        crossed[f"{op}-on-{other}"] = dict(mine, auth=dict(mine["auth"], auth_url=clouds[other]["auth"]["auth_url"]))
        crossed[f"user-{op}-on-{other}"] = dict(mine, auth=dict(
            mine["auth"], auth_url=clouds[other]["auth"]["auth_url"], username=tenant["user"].name,
            password=tenant["password"], project_name=tenant["project"].name))
        assert clouds[other]["auth"]["password"] != mine["auth"]["password"]
    f = tmp_path / "crossed.yaml"
    f.write_text(yaml.safe_dump({"clouds": crossed}))
    for name in crossed:
        with pytest.raises(CloudUnavailable, match="credentials refused"):
            connect(name, str(f))
    # and the real entries still work
    assert connect(op, devcloud.clouds_file).current_project_id
