"""The exporter's bulk reader (``OperatorReader``) against the real devcloud: every quota number it
derives from all-projects listings equals what the services' own quota APIs say for the project
(read by ``read_operator_snapshot``'s per-project path, which returns nova's, neutron's and cinder's
quota sets as they are), for a tenant holding servers, a server group, a network, subnet, ports,
a router, a floating IP, security groups and rules, volumes and a snapshot.

One family failing alone is real too: a clouds.yaml whose block-storage endpoint points at a closed
port fails ``volume_usage`` (and the cinder limit reads) while capacity, compute and network stay
current, and the volume numbers keep their last good values with their read time.

The project is this module's own (``yexp-bulk-<random>``), removed at the end.
"""
from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest
import yaml

from yunshang.capacity import DEPARTMENT_TAG_PREFIX, PROJECT_TAG, project_name
from yunshang.openstack import connect
from yunshang.openstack.capacity import OperatorReader, _department_projects, _Meter, read_operator_snapshot

pytestmark = pytest.mark.cloud

ROOT = Path(__file__).resolve().parents[2]
OP = "unicom"


@pytest.fixture(scope="module")
def provider():
    from yunshang.catalog import load_catalog

    return next(p for p in load_catalog(str(ROOT / "examples" / "prefecture")).providers if p.cloud == OP)


@pytest.fixture(scope="module")
def tenant(devcloud):
    """A department project with something of every counted kind."""
    dept = f"yexp-bulk-{uuid.uuid4().hex[:6]}"
    admin = connect(OP, devcloud.clouds_file)
    proj = admin.identity.create_project(name=project_name(dept), domain_id="default",
                                         tags=[PROJECT_TAG, f"{DEPARTMENT_TAG_PREFIX}{dept}"])
    try:
        admin.identity.assign_project_role_to_user(proj, admin.identity.find_user("admin", domain_id="default"),
                                                   admin.identity.find_role("admin"))
        admin.compute.update_quota_set(proj.id, cores=9, instances=7, ram=256 * 1024 ** 2, server_groups=4)
        admin.network.update_quota(proj.id, networks=3, subnets=3, ports=11, routers=2, floating_ips=2,
                                   security_groups=5, security_group_rules=40)
        admin.block_storage.update_quota_set(proj.id, volumes=6, gigabytes=25, snapshots=3)
        p = admin.connect_as_project({"id": proj.id, "name": proj.name, "domain_id": "default"})
        net = p.network.create_network(name=f"{dept}-net")
        sub = p.network.create_subnet(network_id=net.id, cidr="10.231.0.0/24", ip_version=4, name=f"{dept}-sub")
        ext = next(n for n in admin.network.networks() if n.is_router_external)
        router = p.network.create_router(name=f"{dept}-r", external_gateway_info={"network_id": ext.id})
        p.network.add_interface_to_router(router, subnet_id=sub.id)
        sg = p.network.create_security_group(name=f"{dept}-sg")
        p.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                             port_range_min=443, port_range_max=443, remote_ip_prefix="10.0.0.0/8")
        p.network.create_port(network_id=net.id, name=f"{dept}-spare")
        p.network.create_ip(floating_network_id=ext.id)
        group = p.compute.create_server_group(name=f"{dept}-g", policies=["soft-anti-affinity"])
        flavor = p.compute.find_flavor("m1.tiny", ignore_missing=False)
        image = p.image.find_image("cirros", ignore_missing=False)
        servers = [p.compute.create_server(name=f"{dept}-{i}", flavor_id=flavor.id, image_id=image.id,
                                           networks=[{"uuid": net.id}], scheduler_hints={"group": group.id})
                   for i in range(2)]
        vols = [p.block_storage.create_volume(size=s, name=f"{dept}-v{s}") for s in (1, 2)]
        for v in vols:
            p.block_storage.wait_for_status(v, "available", failures=["error"], interval=1, wait=300)
        snap = p.block_storage.create_snapshot(volume_id=vols[1].id, name=f"{dept}-s")
        p.block_storage.wait_for_status(snap, "available", failures=["error"], interval=1, wait=300)
        for s in servers:
            p.compute.wait_for_server(s, status="ACTIVE", failures=["ERROR"], interval=2, wait=480)
        # one that can never be scheduled (NoValidHost: ERROR in cell0, never launched): nova still
        # counts it against the quota, and the usage report leaves it out
        huge = admin.compute.create_flavor(name=f"{dept}-huge", ram=128 * 1024 ** 2, vcpus=1, disk=1, is_public=False)
        admin.compute.flavor_add_tenant_access(huge, proj.id)
        bad = p.compute.create_server(name=f"{dept}-novalidhost", flavor_id=huge.id, image_id=image.id, networks="none")
        p.compute.wait_for_server(bad, status="ERROR", failures=["ACTIVE"], interval=2, wait=300)
        yield {"dept": dept, "project_id": proj.id}
    finally:
        _remove(admin, proj.id)
        for f in admin.compute.flavors(is_public=None):
            if f.name == f"{dept}-huge":
                admin.compute.delete_flavor(f, ignore_missing=True)


def _remove(admin, pid: str) -> None:
    for s in list(admin.compute.servers(all_projects=True, project_id=pid)):
        admin.compute.delete_server(s, ignore_missing=True)
        admin.compute.wait_for_delete(s, interval=1, wait=300)
    for g in admin.compute.server_groups(all_projects=True):
        if g.project_id == pid:
            admin.compute.delete_server_group(g, ignore_missing=True)
    for s in admin.block_storage.snapshots(all_projects=True, project_id=pid):
        admin.block_storage.delete_snapshot(s, ignore_missing=True)
        admin.block_storage.wait_for_delete(s, interval=1, wait=300)
    for v in admin.block_storage.volumes(all_projects=True, project_id=pid):
        admin.block_storage.delete_volume(v, ignore_missing=True)
        admin.block_storage.wait_for_delete(v, interval=1, wait=300)
    for ip in admin.network.ips(project_id=pid):
        admin.network.delete_ip(ip, ignore_missing=True)
    for r in admin.network.routers(project_id=pid):
        for port in admin.network.ports(device_id=r.id):
            if port.device_owner == "network:router_interface":
                admin.network.remove_interface_from_router(r, port_id=port.id)
        admin.network.delete_router(r, ignore_missing=True)
    for port in admin.network.ports(project_id=pid):
        admin.network.delete_port(port, ignore_missing=True)
    for n in admin.network.networks(project_id=pid):
        admin.network.delete_network(n, ignore_missing=True)
    for sg in admin.network.security_groups(project_id=pid):
        admin.network.delete_security_group(sg, ignore_missing=True)
    admin.identity.delete_project(pid, ignore_missing=True)


def _by_key(quotas):
    return {(q.service, q.resource): (q.limit, q.in_use) for q in quotas}


def _agree(reader, provider, clouds_file, dept, tries=10):
    """Bulk vs per-project, retried: a build or port update may land between the two reads."""
    for _ in range(tries):
        bulk = reader.read()
        exact = read_operator_snapshot(provider, clouds_file, departments=(dept,))
        assert bulk.ok and exact.ok, (bulk.error, exact.error)
        got, want = _by_key(q for q in bulk.quotas if q.department == dept), _by_key(exact.quotas)
        if got == want:
            return bulk, got
        time.sleep(3)
    diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    raise AssertionError(f"bulk != per-project quota sets: {diff}")


def test_bulk_usage_equals_each_services_quota_usage(devcloud, provider, tenant):
    reader = OperatorReader(provider, devcloud.clouds_file, departments=(tenant["dept"],), limits_max_age_seconds=0)
    snap, got = _agree(reader, provider, devcloud.clouds_file, tenant["dept"])
    # the tenant built above, as each service counts it (not just "the two reads agree")
    assert got["compute", "instances"] == (7, 3)               # 2 ACTIVE + 1 ERROR that never launched
    assert got["compute", "cores"] == (9, 3)
    assert got["compute", "ram"][1] == 2 * 512 + 128 * 1024 ** 2
    assert got["compute", "server_groups"] == (4, 1)
    assert got["network", "network"] == (3, 1) and got["network", "subnet"] == (3, 1)
    assert got["network", "router"] == (2, 1) and got["network", "floatingip"] == (2, 1)
    assert got["network", "security_group"][1] >= 2           # its own + the default neutron made
    assert got["network", "port"][1] >= 4                      # 2 servers, spare, router interface (+dhcp)
    assert got["volume", "volumes"] == (6, 2)
    assert got["volume", "gigabytes"] == (25, 1 + 2 + 2)       # volumes 1 + 2 GB, snapshot of the 2 GB one
    assert got["volume", "snapshots"] == (3, 1)
    assert {f.family for f in snap.families if f.ok} == {"capacity", "quota_limits", "compute_usage",
                                                          "network_usage", "volume_usage"}
    services = {c.service for c in snap.api_calls}
    assert {"compute", "network", "volume", "placement", "identity"} <= services
    assert all(c.ok for c in snap.api_calls)


def test_department_projects_are_read_page_by_page(devcloud, tenant):
    """Keystone cuts a listing without ``limit`` at 1,000 projects without saying so (the exporter
    bench lost 2 of 1,000 departments that way), and its tag filter cannot be paginated: the
    reader lists every project page by page. Pages of 2 here find exactly what one page finds."""
    conn = connect(OP, devcloud.clouds_file)
    whole, paged = _Meter(), _Meter()
    one_page = _department_projects(conn, None, whole)
    small = _department_projects(conn, None, paged, page=2)
    assert (tenant["dept"], tenant["project_id"]) in small
    assert small == one_page and len(whole.calls) == 1
    n_projects = len(conn.identity.get("/projects", params={"limit": 1000}).json()["projects"])
    assert n_projects >= 3 and len(paged.calls) >= n_projects // 2


def test_limits_are_cached_then_reread(devcloud, provider, tenant):
    clock = [1000.0]
    reader = OperatorReader(provider, devcloud.clouds_file, departments=(tenant["dept"],),
                            limits_max_age_seconds=300, monotonic=lambda: clock[0])
    first = reader.read()
    n_limit_calls = sum(1 for c in first.api_calls if c.service == "compute")
    admin = connect(OP, devcloud.clouds_file)
    try:
        admin.compute.update_quota_set(tenant["project_id"], cores=11)
        second = reader.read()                 # within max age: the cached limit, usage re-read
        assert _by_key(second.quotas)["compute", "cores"][0] == 9
        assert sum(1 for c in second.api_calls if c.service == "compute") < n_limit_calls
        clock[0] += 301
        third = reader.read()                  # aged out: read again
        assert _by_key(third.quotas)["compute", "cores"][0] == 11
    finally:
        admin.compute.update_quota_set(tenant["project_id"], cores=9)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_failing_service_leaves_the_other_families_current(devcloud, provider, tenant, tmp_path):
    entry = yaml.safe_load(Path(devcloud.clouds_file).read_text())["clouds"][OP]
    reader_ok = OperatorReader(provider, devcloud.clouds_file, departments=(tenant["dept"],), limits_max_age_seconds=0)
    good = reader_ok.read()
    assert good.ok and all(f.ok for f in good.families)
    broken = dict(entry, block_storage_endpoint_override=f"http://127.0.0.1:{_closed_port()}/v3/%(project_id)s")
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {OP: broken}}))
    clouds.chmod(0o600)
    calls = {"n": 0}

    def connect_fn(cloud, clouds_file):
        calls["n"] += 1          # first refresh: the real endpoints; then cinder's points at a closed port
        return connect(cloud, devcloud.clouds_file if calls["n"] == 1 else str(clouds))

    reader = OperatorReader(provider, None, departments=(tenant["dept"],), limits_max_age_seconds=0,
                            connect_fn=connect_fn)
    first = reader.read()
    assert first.ok and all(f.ok for f in first.families)
    reader._conn = None                         # force the reconnect through the broken clouds.yaml
    second = reader.read()
    fam = {f.family: f for f in second.families}
    assert second.ok
    assert not fam["volume_usage"].ok and fam["volume_usage"].error.startswith(f"cloud {OP!r}: cinder ")
    assert fam["volume_usage"].read_at == first.taken_at          # its values are the first refresh's
    assert not fam["quota_limits"].ok                             # cinder limits are read per project too
    assert fam["capacity"].ok and fam["compute_usage"].ok and fam["network_usage"].ok
    assert _by_key(second.quotas) == _by_key(first.quotas)        # last good values kept, none dropped
    assert any(not c.ok and c.service == "volume" for c in second.api_calls)
