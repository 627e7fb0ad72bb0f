"""Seed department tenants on the devcloud directly with openstacksdk (test-side helper).

Projects follow the project convention (``dept-<department>``, tags ``yunshang``,
``department:<name>``, ``contract:<id>``, ``mlps:<n>``). Idempotent: re-running reuses the
project and only boots the servers that are missing.
"""
from __future__ import annotations

import openstack
import openstack.config

from yunshang.capacity import CONTRACT_TAG_PREFIX, DEPARTMENT_TAG_PREFIX, MLPS_TAG_PREFIX, PROJECT_TAG, project_name


def connect(clouds_file: str, cloud: str):
    cfg = openstack.config.OpenStackConfig(config_files=[clouds_file], vendor_files=[])
    return openstack.connection.Connection(config=cfg.get_one(cloud=cloud))


def ensure_project(conn, department: str, contract: str, mlps: int):
    name = project_name(department)
    tags = [PROJECT_TAG, f"{DEPARTMENT_TAG_PREFIX}{department}", f"{CONTRACT_TAG_PREFIX}{contract}", f"{MLPS_TAG_PREFIX}{mlps}"]
    proj = conn.identity.find_project(name, domain_id="default")
    if proj is None:
        proj = conn.identity.create_project(name=name, domain_id="default", tags=tags,
                                            description=f"yunshang tenant of {department}")
    admin = conn.identity.find_user("admin", domain_id="default")
    role = conn.identity.find_role("admin")
    conn.identity.assign_project_role_to_user(proj, admin, role)
    return proj


def ensure_servers(clouds_file: str, cloud: str, department: str, contract: str, mlps: int,
                   zones: dict[str, int], flavor: str = "m1.tiny", cores_quota: int = 20) -> dict:
    """Make the department's project hold ``zones[zone]`` ACTIVE servers in each zone. Returns ids."""
    conn = connect(clouds_file, cloud)
    proj = ensure_project(conn, department, contract, mlps)
    conn.compute.update_quota_set(proj.id, cores=cores_quota, instances=20, ram=cores_quota * 2048)
    pconn = conn.connect_as_project({"id": proj.id, "name": proj.name, "domain_id": "default"})
    fl = pconn.compute.find_flavor(flavor, ignore_missing=False)
    img = pconn.image.find_image("cirros", ignore_missing=False)
    have = list(pconn.compute.servers())
    created = []
    for zone, want in zones.items():
        mine = [s for s in have if s.availability_zone == zone or s.name.startswith(f"{department}-{zone}-")]
        for i in range(len(mine), want):
            created.append(pconn.compute.create_server(name=f"{department}-{zone}-{i}", flavor_id=fl.id, image_id=img.id,
                                                       networks="none", availability_zone=zone))
    for s in created:
        pconn.compute.wait_for_server(s, status="ACTIVE", failures=["ERROR"], interval=1, wait=180)
    return {"project_id": proj.id, "created": len(created)}


def placement_totals(clouds_file: str, cloud: str) -> dict[str, dict[str, float]]:
    """What Placement says, summed per resource class over all resource providers: total/reserved/used."""
    conn = connect(clouds_file, cloud)
    out: dict[str, dict[str, float]] = {}
    for rp in conn.placement.resource_providers():
        inv = conn.placement.get(f"/resource_providers/{rp.id}/inventories").json()["inventories"]
        use = conn.placement.get(f"/resource_providers/{rp.id}/usages").json()["usages"]
        for rc, i in inv.items():
            acc = out.setdefault(rc, {"total": 0, "reserved": 0, "used": 0, "capacity": 0.0})
            acc["total"] += i["total"]
            acc["reserved"] += i["reserved"]
            acc["used"] += use.get(rc, 0)
            acc["capacity"] += (i["total"] - i["reserved"]) * i["allocation_ratio"]
    return out


def compute_quota(clouds_file: str, cloud: str, project_id: str) -> dict:
    conn = connect(clouds_file, cloud)
    q = conn.compute.get_quota_set(project_id, usage=True)
    return {"cores": (q.cores, q.usage.get("cores")), "instances": (q.instances, q.usage.get("instances")),
            "ram": (q.ram, q.usage.get("ram"))}


def remove_project(clouds_file: str, cloud: str, department: str) -> None:
    """Delete the seeded project's servers, then the project: the tests leave the cloud as they found it."""
    conn = connect(clouds_file, cloud)
    proj = conn.identity.find_project(project_name(department), domain_id="default")
    if proj is None:
        return
    servers = list(conn.compute.servers(all_projects=True, project_id=proj.id))
    for s in servers:
        conn.compute.delete_server(s, ignore_missing=True)
    for s in servers:
        conn.compute.wait_for_delete(s, interval=1, wait=300)
    conn.identity.delete_project(proj, ignore_missing=True)
