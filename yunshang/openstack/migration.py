"""The cloud side of a migration, through openstacksdk: precheck, import, boot, verify, clean up.

The playbooks call it as ``python -m yunshang.openstack.migration <command> ...``
(the openstack.cloud collection cannot be used with this openstacksdk). Each
command prints ONE JSON object on stdout and exits 0 on success; 3 when the
destination does not fit (precheck) or a verification failed; 4 when the cloud
could not be reached. Nothing printed ever contains credentials: only names,
ids, sizes and checksums.

What it creates in the department's project, all marked with metadata
``yunshang_migrated_host=<host>`` so rollback finds exactly them:

* image  ``migrated-<host>``   (qcow2, private to the project)
* server ``<host>``            (flavor/network/security groups from the precheck)
* volume ``<host>-data``       (the data volume, sized for the synced data + 25 %)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from typing import Any, Callable

import openstack.connection

from yunshang.errors import YunshangError
from yunshang.migration.fit import (Flavor, QuotaNeed, SecurityGroup, SecurityRule, choose_security_groups,
                                    fit_flavor, quota_shortfalls, volume_gb_for)
from yunshang.migration.plan import MigrationPlan, plan_from_dict
from yunshang.openstack import CLOUD_ERRORS, connect  # admin connection: explicit cloud, explicit clouds.yaml
from yunshang.redact import exception_text, redact

MARK = "yunshang_migrated_host"
EXIT_NOFIT = 3
EXIT_CLOUD = 4


def image_name(host: str) -> str:
    return f"migrated-{host}"


def volume_name(host: str) -> str:
    return f"{host}-data"


def as_project(conn: openstack.connection.Connection, project: Any) -> openstack.connection.Connection:
    """The same account, scoped to the department's project (it needs a role there)."""
    return conn.connect_as(project_id=project.id, project_domain_id=project.domain_id)


def _load_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _record(records: str, host: str, step: str) -> dict[str, Any]:
    path = os.path.join(records, host, f"{step}.json")
    try:
        return _load_json(path)
    except FileNotFoundError:
        raise SystemExit(_fail(f"{host}: no {step} record at {path}: run the {step} step first", EXIT_NOFIT)) from None


def _fail(message: str, code: int) -> int:
    print(json.dumps({"ok": False, "error": redact(message)}))
    return code


# --------------------------------------------------------------------------- precheck
def precheck(plan: MigrationPlan, hosts: list[str], records: str,
             connector: Callable[[str], openstack.connection.Connection]) -> dict[str, Any]:
    """Does the wave fit its destinations? Per host: flavor, network, security groups, volume;
    per project: tenant exists, quota; per operator: free capacity. Reads nothing but the cloud
    and the discover records; changes nothing."""
    report: dict[str, Any] = {"ok": True, "problems": [], "hosts": {}}
    groups: dict[tuple[str, str], list[str]] = {}
    for h in hosts:
        d = plan.destination(h)
        groups.setdefault((d.operator, d.project), []).append(h)
    for (operator, project_name), names in sorted(groups.items()):
        entries = {h: {"ok": True, "problems": [], "operator": operator, "project": project_name} for h in names}
        report["hosts"].update(entries)

        def all_fail(msg: str, entries: dict = entries) -> None:
            for e in entries.values():
                e["problems"].append(msg)

        try:
            conn = connector(operator)
            project = conn.identity.find_project(project_name)
        except YunshangError as exc:          # CloudUnavailable from the shared connect()
            all_fail(str(exc))
            continue
        except CLOUD_ERRORS as exc:
            all_fail(f"operator {operator!r} unreachable: {type(exc).__name__}")
            continue
        if project is None:
            all_fail(f"tenant {project_name} does not exist on operator {operator}: create it first "
                     f"(`yunshang tenant apply`)")
            continue
        try:
            pconn = as_project(conn, project)
            pconn.authorize()
        except CLOUD_ERRORS:
            all_fail(f"the migration account has no role on {project_name} at {operator}")
            continue
        flavors = [Flavor(f.name, f.vcpus, f.ram, f.disk) for f in conn.compute.flavors(details=True)
                   if f.is_public is not False and f.disk]
        networks = [n for n in conn.network.networks(project_id=project.id)
                    if not n.is_router_external and n.subnet_ids]
        groups_ = [SecurityGroup(sg.name, tuple(
            SecurityRule(r.get("protocol") or "any", r.get("port_range_min"), r.get("port_range_max"),
                         r.get("remote_ip_prefix") or "0.0.0.0/0")
            for r in sg.security_group_rules if r.get("direction") == "ingress" and r.get("ethertype") == "IPv4"
            and not r.get("remote_group_id")))   # "from members of group X" does not let clients in
            for sg in conn.network.security_groups(project_id=project.id)]
        need = {"cores": 0, "ram": 0, "instances": 0, "gigabytes": 0, "volumes": 0}
        for h in names:
            e = entries[h]
            host = plan.survey.host(h)
            rec = _record(records, h, "discover")
            image_gb = int(rec.get("disk_image_bytes") or 0) / 2**30
            flavor = fit_flavor(host, flavors, image_gb)
            if flavor is None:
                e["problems"].append(f"no flavor on {operator} has >= {host.vcpu} vCPU, {host.ram_gb} GB RAM, "
                                     f"{max(host.disk_gb, math.ceil(image_gb))} GB disk")
            else:
                e["flavor"] = flavor.name
                need["cores"] += flavor.vcpus
                need["ram"] += flavor.ram_mb
                need["instances"] += 1
            if not networks:
                e["problems"].append(f"{project_name} at {operator} has no network with a subnet")
            else:
                e["network"] = sorted(networks, key=lambda n: n.name)[0].name
            chosen, uncovered = choose_security_groups([s.port for s in host.services], groups_)
            e["security_groups"] = list(chosen)
            if uncovered:
                e["problems"].append(f"no security group of {project_name} allows tcp port(s) "
                                     f"{', '.join(map(str, uncovered))} "
                                     f"({', '.join(s.name for s in host.services if s.port in uncovered)})")
            data_bytes = int(rec.get("data_bytes") or 0)
            e["volume_gb"] = volume_gb_for(data_bytes) if data_bytes else 0
            if e["volume_gb"]:
                need["gigabytes"] += e["volume_gb"]
                need["volumes"] += 1
            e["disk_image_gb"] = round(image_gb, 3)
        # quota of the project, for the whole wave at once
        try:
            cq = conn.compute.get_quota_set(project.id, usage=True)
            vq = conn.block_storage.get_quota_set(project.id, usage=True)
        except CLOUD_ERRORS as exc:
            all_fail(f"cannot read quotas of {project_name} at {operator}: {type(exc).__name__}")
            continue
        needs = [QuotaNeed(r, need[r], int(getattr(cq, r)), int((cq.usage or {}).get(r, 0)))
                 for r in ("cores", "ram", "instances")]
        needs += [QuotaNeed(r, need[r], int(getattr(vq, r)), int((vq.usage or {}).get(r, 0)))
                  for r in ("gigabytes", "volumes")]
        short = quota_shortfalls(needs)
        if short:
            report["problems"] += [f"{project_name} at {operator}: {s}" for s in short]
        # free capacity of the operator's compute (Placement), for the whole wave
        try:
            free = _placement_free(conn)
        except CLOUD_ERRORS as exc:
            report["problems"].append(f"cannot read Placement of {operator}: {type(exc).__name__}")
            free = {}
        for rc, amount in (("VCPU", need["cores"]), ("MEMORY_MB", need["ram"])):
            if rc in free and amount > free[rc]:
                report["problems"].append(f"operator {operator}: {rc} free {free[rc]:.0f}, wave needs {amount}")
    for e in report["hosts"].values():
        e["ok"] = not e["problems"]
    report["ok"] = not report["problems"] and all(e["ok"] for e in report["hosts"].values())
    return report


def _placement_free(conn: openstack.connection.Connection) -> dict[str, float]:
    free: dict[str, float] = {}
    for rp in conn.placement.resource_providers():
        inv = conn.placement.get(f"/resource_providers/{rp.id}/inventories").json().get("inventories", {})
        use = conn.placement.get(f"/resource_providers/{rp.id}/usages").json().get("usages", {})
        for rc, i in inv.items():
            cap = (i["total"] - i.get("reserved", 0)) * i.get("allocation_ratio", 1.0)
            free[rc] = free.get(rc, 0.0) + cap - use.get(rc, 0)
    return free


# --------------------------------------------------------------------------- image
def file_sha512(path: str) -> str:
    h = hashlib.sha512()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_project(conn, name):
    project = conn.identity.find_project(name)
    if project is None:
        raise LookupError(f"tenant {name} does not exist")
    return project


def import_image(conn, project_name: str, host: str, path: str, sha512: str) -> dict[str, Any]:
    """Upload ``path`` as ``migrated-<host>`` into the project's Glance; reuse an active image with the
    same sha512 (idempotent), replace a broken or different one."""
    project = _find_project(conn, project_name)
    pconn = as_project(conn, project)
    local = file_sha512(path)
    if local != sha512:
        raise ValueError(f"{path}: sha512 {local[:16]}... differs from the converted disk's {sha512[:16]}...")
    for img in pconn.image.images(owner=project.id):
        if img.name != image_name(host):
            continue
        if img.status == "active" and img.hash_value == sha512:
            return {"ok": True, "changed": False, "image_id": img.id, "sha512": sha512, "size_bytes": img.size}
        pconn.image.delete_image(img, ignore_missing=True)   # half-uploaded or stale: replace it
    img = pconn.image.create_image(
        name=image_name(host), filename=path, disk_format="qcow2", container_format="bare",
        visibility="private", wait=True, timeout=600, validate_checksum=False,
        **{MARK: host})
    img = pconn.image.get_image(img.id)
    if img.hash_value != sha512:
        raise ValueError(f"Glance stored image {img.id} with sha512 {img.hash_value[:16]}..., uploaded {sha512[:16]}...")
    return {"ok": True, "changed": True, "image_id": img.id, "sha512": img.hash_value, "size_bytes": img.size}


# --------------------------------------------------------------------------- server
def _wait(fn: Callable[[], Any], what: str, timeout_seconds: float = 300, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")
        time.sleep(interval)


def boot_server(conn, project_name: str, host: str, image_id: str, flavor: str, network: str,
                security_groups: list[str], volume_gb: int) -> dict[str, Any]:
    """Server ``<host>`` ACTIVE in the project (reused if already there), data volume attached."""
    project = _find_project(conn, project_name)
    pconn = as_project(conn, project)
    changed = False
    server = pconn.compute.find_server(host, ignore_missing=True)
    if server is not None:
        server = pconn.compute.get_server(server.id)
        if server.status == "ERROR":
            pconn.compute.delete_server(server)
            pconn.compute.wait_for_delete(server, wait=120)
            server = None
    if server is None:
        fl = pconn.compute.find_flavor(flavor, ignore_missing=False)
        net = pconn.network.find_network(network, project_id=project.id, ignore_missing=False)
        server = pconn.compute.create_server(
            name=host, image_id=image_id, flavor_id=fl.id, networks=[{"uuid": net.id}],
            security_groups=[{"name": g} for g in (security_groups or ["default"])], metadata={MARK: host})
        changed = True
    server = pconn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=300)
    volume_id = ""
    if volume_gb:
        vol = next((v for v in pconn.block_storage.volumes(name=volume_name(host))), None)
        if vol is None:
            vol = pconn.block_storage.create_volume(name=volume_name(host), size=volume_gb, metadata={MARK: host})
            changed = True
        vol = pconn.block_storage.wait_for_status(vol, status="available", failures=["error"], interval=1, wait=300) \
            if vol.status not in ("available", "in-use") else vol
        attached = [a for a in pconn.compute.volume_attachments(server) if a.volume_id == vol.id]
        if not attached:
            pconn.compute.create_volume_attachment(server, volume_id=vol.id)
            pconn.block_storage.wait_for_status(vol, status="in-use", failures=["error"], interval=1, wait=300)
            changed = True
        volume_id = vol.id
    return {"ok": True, "changed": changed, "server_id": server.id, "status": server.status,
            "flavor": flavor, "network": network, "volume_id": volume_id}


def verify_server(conn, project_name: str, host: str, expect: dict[str, Any]) -> dict[str, Any]:
    """Evidence that the migrated server is what the plan asked for (each check named, true/false)."""
    project = _find_project(conn, project_name)
    pconn = as_project(conn, project)
    checks: dict[str, Any] = {}
    img = pconn.image.find_image(image_name(host), ignore_missing=True)
    checks["image_active"] = bool(img and img.status == "active")
    checks["image_sha512_matches"] = bool(img and img.hash_value == expect["sha512"])
    server = pconn.compute.find_server(host, ignore_missing=True)
    server = pconn.compute.get_server(server.id) if server else None
    checks["server_active"] = bool(server and server.status == "ACTIVE")
    checks["server_in_project"] = bool(server and server.project_id == project.id)
    checks["server_flavor"] = bool(server and (server.flavor.get("original_name") or server.flavor.get("name"))
                                   == expect["flavor"])
    checks["server_on_network"] = bool(server and expect["network"] in (server.addresses or {}))
    checks["server_from_image"] = bool(server and img and (server.image or {}).get("id") == img.id)
    if expect.get("security_groups"):
        names = {g["name"] for g in (server.security_groups or [])} if server else set()
        checks["security_groups"] = set(expect["security_groups"]) <= names
    if expect.get("volume_id"):
        vol = pconn.block_storage.get_volume(expect["volume_id"])
        checks["data_volume_attached"] = bool(server and any(a.get("server_id") == server.id for a in vol.attachments))
    ok = all(bool(v) for v in checks.values())
    return {"ok": ok, "checks": checks, "server_id": server.id if server else "", "image_id": img.id if img else "",
            "failed": sorted(k for k, v in checks.items() if not v)}


# --------------------------------------------------------------------------- rollback
def leftovers(conn, project_name: str, host: str | None = None) -> dict[str, list[str]]:
    """Servers, volumes and images the migration created in the project (all hosts, or one)."""
    project = conn.identity.find_project(project_name)
    if project is None:
        return {"servers": [], "volumes": [], "images": []}
    pconn = as_project(conn, project)

    def mine(meta: dict | None) -> bool:
        v = (meta or {}).get(MARK)
        return v is not None and (host is None or v == host)

    # Nova reports a deleted server as status DELETED until nova-compute has finished tearing it
    # down (ports, attachments) and drops it from the list; by the API it is gone already.
    servers = [s.name for s in pconn.compute.servers() if mine(s.metadata) and s.status != "DELETED"]
    volumes = [v.name for v in pconn.block_storage.volumes() if mine(v.metadata)]
    images = [i.name for i in pconn.image.images(owner=project.id)
              if mine(i.properties) or (i.name == image_name(host) if host else i.name.startswith("migrated-"))]
    return {"servers": sorted(servers), "volumes": sorted(volumes), "images": sorted(images)}


def cleanup_host(conn, project_name: str, host: str) -> dict[str, Any]:
    """Delete the host's migrated server, data volume and image; idempotent (nothing there = ok)."""
    project = conn.identity.find_project(project_name)
    if project is None:
        return {"ok": True, "changed": False, "deleted": {}}
    pconn = as_project(conn, project)
    deleted: dict[str, list[str]] = {"servers": [], "volumes": [], "images": []}
    for s in list(pconn.compute.servers(name=f"^{host}$")):
        if (s.metadata or {}).get(MARK) != host or s.status == "DELETED":
            continue
        pconn.compute.delete_server(s)
        pconn.compute.wait_for_delete(s, interval=1, wait=300)
        deleted["servers"].append(s.id)
    for v in list(pconn.block_storage.volumes(name=volume_name(host))):
        if (v.metadata or {}).get(MARK) != host:
            continue
        if v.status == "in-use":
            _wait(lambda v=v: pconn.block_storage.get_volume(v.id).status != "in-use", f"volume {v.id} to detach", 120)
        pconn.block_storage.delete_volume(v, ignore_missing=True)
        pconn.block_storage.wait_for_delete(v, interval=1, wait=300)
        deleted["volumes"].append(v.id)
    for i in list(pconn.image.images(owner=project.id)):
        if i.name == image_name(host):
            pconn.image.delete_image(i, ignore_missing=True)
            deleted["images"].append(i.id)
    left = leftovers(conn, project_name, host)
    return {"ok": not any(left.values()), "changed": any(deleted.values()), "deleted": deleted, "left": left}


# --------------------------------------------------------------------------- command line (for the playbooks)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m yunshang.openstack.migration",
                                 description="Cloud steps of `yunshang migrate`; prints one JSON object.")
    ap.add_argument("--clouds", required=True, help="clouds.yaml (one cloud per operator)")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("precheck")
    p.add_argument("--plan", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--hosts", required=True, help="comma-separated hostnames")
    for name in ("import-image", "boot", "verify", "cleanup", "leftovers"):
        q = sub.add_parser(name)
        q.add_argument("--cloud", required=True)
        q.add_argument("--project", required=True)
        q.add_argument("--host", required=name != "leftovers")
        q.add_argument("--records")
    sub.choices["import-image"].add_argument("--file", required=True)
    args = ap.parse_args(argv)
    try:
        if args.command == "precheck":
            plan = plan_from_dict(_load_json(args.plan), args.plan)
            hosts = [h for h in args.hosts.split(",") if h]
            out = precheck(plan, hosts, args.records, lambda op: connect(op, args.clouds))
            print(json.dumps(out, sort_keys=True))
            return 0 if out["ok"] else EXIT_NOFIT
        conn = connect(args.cloud, args.clouds)
        if args.command == "import-image":
            conv = _record(args.records, args.host, "convert")
            out = import_image(conn, args.project, args.host, args.file, conv["sha512"])
        elif args.command == "boot":
            pre = _record(args.records, args.host, "precheck")
            imp = _record(args.records, args.host, "import")
            out = boot_server(conn, args.project, args.host, imp["image_id"], pre["flavor"], pre["network"],
                              pre.get("security_groups", []), int(pre.get("volume_gb", 0)))
        elif args.command == "verify":
            pre = _record(args.records, args.host, "precheck")
            conv = _record(args.records, args.host, "convert")
            boot = _record(args.records, args.host, "boot")
            out = verify_server(conn, args.project, args.host, {**pre, "sha512": conv["sha512"],
                                                               "volume_id": boot.get("volume_id", "")})
        elif args.command == "cleanup":
            out = cleanup_host(conn, args.project, args.host)
        else:
            out = {"ok": True, **leftovers(conn, args.project, args.host)}
    except (LookupError, ValueError, TimeoutError) as exc:
        return _fail(str(exc), EXIT_NOFIT)
    except YunshangError as exc:
        return _fail(str(exc), EXIT_CLOUD)
    except CLOUD_ERRORS as exc:
        return _fail(f"{type(exc).__name__}: {exception_text(exc)}", EXIT_CLOUD)
    print(json.dumps(out, sort_keys=True))
    return 0 if out.get("ok", True) else EXIT_NOFIT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
