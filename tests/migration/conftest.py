"""Fixtures for the migration tests: real sshd source hosts and a real destination tenant.

* Source hosts: one sshd per host on 127.0.0.N:2222, each under
  ``unshare --mount --uts`` with its own hostname, /run and /srv (see sshhosts.py),
  seeded with data directories and a raw disk image.
* Destination: project ``dept-mtest`` on the devcloud's ``telecom`` operator with a
  network + subnet and a security group allowing ssh (22) from the center's
  bastion CIDR, created here directly with openstacksdk; the migration account
  (the cloud's admin user) gets the admin role in it, as the tenant engine gives it.
"""
from __future__ import annotations

import os
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import sshhosts  # noqa: E402
from sshhosts import DEPARTMENT, OPERATOR, PROJECT  # noqa: E402


@pytest.fixture(scope="session")
def migration_tools():
    missing = sshhosts.missing_tools()
    if missing:
        pytest.fail(f"missing tools for the migration tests: {', '.join(missing)} (run `make system-deps`)")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory, migration_tools):
    return sshhosts.make_key(str(tmp_path_factory.mktemp("keys")))


@pytest.fixture(scope="session")
def ssh_hosts(tmp_path_factory, ssh_key):
    """Four seeded source hosts m1..m4 on 127.0.0.2..5."""
    root = str(tmp_path_factory.mktemp("hosts"))
    hosts = []
    try:
        for i in range(4):
            h = sshhosts.start_host(f"m{i + 1}", 2 + i, root, ssh_key)
            sshhosts.seed_host(h)
            hosts.append(h)
        yield hosts
    finally:
        for h in hosts:
            h.stop()


@pytest.fixture(scope="session")
def cloud_password(devcloud):
    with open(devcloud.clouds_file) as fh:
        clouds = yaml.safe_load(fh)["clouds"]
    return clouds[OPERATOR]["auth"]["password"]


@pytest.fixture(scope="session")
def admin_conn(devcloud):
    from yunshang.openstack import connect

    return connect(OPERATOR, devcloud.clouds_file)


@pytest.fixture(scope="session")
def dest_tenant(admin_conn):
    conn = admin_conn
    project = conn.identity.find_project(PROJECT)
    if project is None:
        project = conn.identity.create_project(name=PROJECT, domain_id="default", description="yunshang migration tests",
                                               tags=["yunshang", f"department:{DEPARTMENT}", "mlps:2"])
    role = conn.identity.find_role("admin")
    conn.identity.assign_project_role_to_user(project, conn.current_user_id, role)
    pconn = conn.connect_as(project_id=project.id, project_domain_id=project.domain_id)
    net = pconn.network.find_network("mtest-net", project_id=project.id)
    if net is None:
        net = pconn.network.create_network(name="mtest-net")
    if not list(pconn.network.subnets(network_id=net.id)):
        pconn.network.create_subnet(network_id=net.id, name="mtest-subnet", cidr="10.99.0.0/24", ip_version=4)
    sg = pconn.network.find_security_group("mtest-ssh", project_id=project.id)
    if sg is None:
        sg = pconn.network.create_security_group(name="mtest-ssh", description="ssh from the bastions")
        pconn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                                 protocol="tcp", port_range_min=22, port_range_max=22,
                                                 remote_ip_prefix="10.250.0.0/24")
    yield project
    # whatever a failed test left behind (a passing run has rolled everything back already)
    from yunshang.openstack.migration import MARK, cleanup_host

    hosts = {(s.metadata or {}).get(MARK) for s in pconn.compute.servers()} | {
        (v.metadata or {}).get(MARK) for v in pconn.block_storage.volumes()} | {
        i.name.removeprefix("migrated-") for i in pconn.image.images(owner=project.id) if i.name.startswith("migrated-")}
    for h in sorted(h for h in hosts if h):
        cleanup_host(conn, PROJECT, h)
