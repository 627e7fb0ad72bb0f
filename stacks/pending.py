"""Resolve the pending operations an interrupted update left in a stack's state.

When `pulumi up` is killed (SIGKILL, power loss) after the engine asked the provider to create a
resource but before it recorded the answer, the state keeps a *pending create*: the cloud may hold
a resource the state does not know. Pulumi then refuses to guess; left alone, the next `up` would
create it again (a duplicate, and an orphan nobody destroys).

Before each operation yunshang looks every pending create up in the cloud by what makes it unique
inside the department's project (its name, or for a rule its content):
  found      -> `pulumi refresh --import-pending-creates URN ID` (the state adopts it);
  not found  -> cleared (`--clear-pending-creates`): it was never made.
Kinds whose create is idempotent in the provider (quotas, role assignments, flavor access) are
cleared: creating them again cannot duplicate anything. Pending updates/deletes are repaired by
the refresh itself (the resource is in the state; its real state is read back).
"""
from __future__ import annotations

from typing import Callable, Optional

IDEMPOTENT = frozenset({
    "openstack:compute/quotaSetV2:QuotaSetV2", "openstack:networking/quotaV2:QuotaV2",
    "openstack:blockstorage/quoteSetV3:QuoteSetV3", "openstack:identity/roleAssignment:RoleAssignment",
    "openstack:compute/flavorAccess:FlavorAccess",
})


def pending_creates(deployment: dict) -> list[dict]:
    return [op["resource"] for op in deployment.get("pending_operations") or [] if op.get("type") == "creating"]


def _one(items) -> Optional[str]:
    items = list(items)
    return items[0].id if len(items) == 1 else None


def _lookups(conn, project_id: Optional[str]) -> dict[str, Callable[[dict], Optional[str]]]:
    """type token -> inputs -> cloud id (None: not there)."""
    net = conn.network

    def named(list_fn, **extra):
        def find(inp):
            if not inp.get("name"):
                return None
            return _one(list_fn(name=inp["name"], **extra))
        return find

    def rule(inp):
        want = (inp.get("direction"), inp.get("ethertype") or "IPv4", inp.get("protocol") or None,
                inp.get("portRangeMin") or None, inp.get("portRangeMax") or None, inp.get("remoteIpPrefix") or None)
        for r in net.security_group_rules(security_group_id=inp.get("securityGroupId")):
            if (r.direction, r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix) == want:
                return r.id
        return None

    def floating_ip(inp):
        return _one(net.ips(port_id=inp.get("portId"), project_id=project_id)) if inp.get("portId") else None

    def router_interface(inp):
        for p in net.ports(device_id=inp.get("routerId"), device_owner="network:router_interface"):
            if any(ip.get("subnet_id") == inp.get("subnetId") for ip in p.fixed_ips or []):
                return p.id
        return None

    def volume_attach(inp):
        for a in conn.compute.volume_attachments(inp.get("instanceId")):
            if a.volume_id == inp.get("volumeId"):
                return f"{inp['instanceId']}/{a.id}"
        return None

    scoped = {"project_id": project_id} if project_id else {}
    return {
        "openstack:identity/project:Project": named(conn.identity.projects),
        "openstack:identity/user:User": named(conn.identity.users),
        "openstack:compute/flavor:Flavor": named(lambda **kw: [f for f in conn.compute.flavors(is_public=None)
                                                               if f.name == kw["name"]]),
        "openstack:networking/network:Network": named(net.networks, **scoped),
        "openstack:networking/subnet:Subnet": named(net.subnets, **scoped),
        "openstack:networking/router:Router": named(net.routers, **scoped),
        "openstack:networking/secGroup:SecGroup": named(net.security_groups, **scoped),
        "openstack:networking/port:Port": named(net.ports, **scoped),
        "openstack:networking/secGroupRule:SecGroupRule": rule,
        "openstack:networking/floatingIp:FloatingIp": floating_ip,
        "openstack:networking/routerInterface:RouterInterface": router_interface,
        "openstack:compute/serverGroup:ServerGroup": named(lambda **kw: [g for g in conn.compute.server_groups(
            all_projects=True) if g.name == kw["name"] and (not project_id or g.project_id == project_id)]),
        "openstack:compute/instance:Instance": named(lambda **kw: conn.compute.servers(
            all_projects=True, name=f"^{kw['name']}$", **({"project_id": project_id} if project_id else {}))),
        "openstack:blockstorage/volume:Volume": named(lambda **kw: conn.block_storage.volumes(
            all_projects=True, name=kw["name"], **({"project_id": project_id} if project_id else {}))),
        "openstack:compute/volumeAttach:VolumeAttach": volume_attach,
    }


def resolve_pending(stack, spec, clouds_file: Optional[str]) -> list[dict]:
    """Import or clear the stack's pending creates; returns what was done (empty: nothing pending)."""
    import json

    from stacks.automation import pulumi_cli

    pend = pending_creates(json.loads(pulumi_cli(stack, ["stack", "export", "--stack", stack.name]))["deployment"])
    if not pend:
        return []
    from yunshang.openstack import connect

    conn = connect(spec.cloud, clouds_file)
    project = conn.identity.find_project(spec.project.name)
    lookups = _lookups(conn, project.id if project else None)
    imports, done = [], []
    for res in pend:
        kind, urn, inputs = res.get("type", ""), res.get("urn", ""), res.get("inputs") or {}
        found = None
        if kind not in IDEMPOTENT and kind in lookups:
            found = lookups[kind](inputs)
        if found:
            imports += [urn, found]
        done.append({"urn": urn, "action": "import" if found else "clear", "id": found})
    args = ["refresh", "--yes", "--skip-preview", "--stack", stack.name, "--non-interactive"]
    for x in imports:  # a string-array flag: URN and ID each its own value
        args += ["--import-pending-creates", x]
    if any(d["action"] == "clear" for d in done):
        # Clear the rest: the CLI applies the imports first, then drops what is still pending.
        args += ["--clear-pending-creates"] if not imports else []
    _pulumi(stack, args)
    if imports and any(d["action"] == "clear" for d in done):
        _pulumi(stack, ["refresh", "--yes", "--skip-preview", "--stack", stack.name, "--non-interactive",
                        "--clear-pending-creates"])
    return done


def _pulumi(stack, args: list[str]) -> None:
    from stacks.automation import pulumi_cli

    pulumi_cli(stack, [a for a in args if a != "--non-interactive"])


def clear_stale_engine_lock(stack, backend_url: str) -> list[str]:
    """Remove Pulumi's own lock files of the stack left by a killed engine (file:// backends).

    Called with yunshang's stack lock held, so no other yunshang runs this stack: a lock file
    whose process (this host) is gone is stale and removed with `pulumi cancel`; one whose
    process still runs (an engine orphaned by a killed yunshang) makes the operation wait for
    nothing: StackBusy names it."""
    import json
    import socket
    from pathlib import Path

    from stacks.automation import StackBusy, pulumi_cli

    if not backend_url.startswith("file://"):
        return []
    d = Path(backend_url[len("file://"):].split("?", 1)[0]) / ".pulumi" / "locks" / "organization" / \
        "yunshang" / stack.name
    stale = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        pid, host = int(info.get("pid") or 0), info.get("hostname")
        if host == socket.gethostname() and pid > 0 and _alive(pid):
            raise StackBusy(f"stack {stack.name}: the engine of an interrupted run (pid {pid}) still holds it: "
                            "wait for it to exit, then retry")
        stale.append(f"{host} pid {pid}")
    if stale:
        pulumi_cli(stack, ["cancel", "--yes", "--stack", stack.name])
    return stale


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"pulumi" in fh.read()
    except OSError:
        return True
