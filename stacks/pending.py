"""Resolve the pending operations an interrupted update left in a stack's state.

When `pulumi up` is killed (SIGKILL, power loss) after the engine asked the provider to create a
resource but before it recorded the answer, the state keeps a *pending create*: the cloud may hold
a resource the state does not know. Pulumi then refuses to guess; left alone, the next `up` would
create it again (a duplicate, and an orphan nobody destroys).

Every in-flight create has one: the engine writes the pending op to the backend, synchronously,
before it calls the provider (pkg/backend/snapshot.go `doCreate` through the snapshot manager's
default service loop; yunshang never sets PULUMI_SKIP_CHECKPOINTS, the one switch that defers
those writes). Each Pulumi resource of the program is one cloud object (a router interface is
its port), so a pending create is the only trace a half-made resource can have.

Before each operation yunshang looks every pending create up in the cloud by what makes it unique
inside the department's project (its name; a rule by its content; a router interface by router +
subnet; a floating IP by its port; an attachment by server + volume):
  found      -> adopted: the resource, with the cloud's id, goes into the state (a state edit,
                then a refresh of it): the next `up` sees it as existing, creates nothing;
  several    -> refused, naming them (a human decides which one is the stack's);
  not found  -> cleared: it was never made.
Kinds whose create is idempotent in the provider (quotas, role assignments: PUTs; flavor access:
the provider accepts Nova's 409) are cleared: creating them again cannot duplicate anything.
Provider resources are not cloud objects (cleared). Pending updates/deletes are repaired by the
refresh itself (the resource is in the state; its real state is read back).
"""
from __future__ import annotations

from typing import Callable, Optional

from yunshang.tenant import KIND

# The pulumi-openstack types, from the one model of kinds: each kind's main type, and the second
# type the flavor and volume kinds declare (their access grant, their attachment).
T: dict[str, str] = {name: k.pulumi_type for name, k in KIND.items()}
_, FLAVOR_ACCESS = KIND["flavor"].pulumi_types
_, VOLUME_ATTACH = KIND["volume"].pulumi_types

IDEMPOTENT = frozenset({*KIND["quota"].pulumi_types, T["role_assignment"], FLAVOR_ACCESS})


# Looked up in the cloud (the keys of _lookups); identity and flavors are the operator's, the
# rest live inside the department's project (no project: they cannot exist).
OPERATOR_SCOPED = frozenset({T["project"], T["user"], T["flavor"]})
PROJECT_SCOPED = frozenset({
    T["network"], T["subnet"], T["router"], T["router_interface"], T["security_group"], T["security_group_rule"],
    T["port"], T["floating_ip"], T["server_group"], T["server"], T["volume"], VOLUME_ATTACH,
})
RESOLVABLE = OPERATOR_SCOPED | PROJECT_SCOPED | IDEMPOTENT


def pending_creates(deployment: dict) -> list[dict]:
    return [op["resource"] for op in deployment.get("pending_operations") or [] if op.get("type") == "creating"]


class Ambiguous(Exception):
    """More than one cloud object answers a pending create's unique key."""


def _one(items) -> Optional[str]:
    items = list(items)
    if len(items) > 1:
        raise Ambiguous(", ".join(sorted(str(x.id) for x in items)))
    return items[0].id if items else None


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
        """The router's port on the subnet (the interface's id is that port's id)."""
        if not inp.get("routerId") or not inp.get("subnetId"):
            return None
        ports = [p for p in net.ports(device_id=inp["routerId"])
                 if (p.device_owner or "").startswith(("network:router_interface", "network:ha_router_replicated"))
                 and any(ip.get("subnet_id") == inp["subnetId"] for ip in p.fixed_ips or [])]
        return _one(ports)

    def volume_attach(inp):
        if not inp.get("instanceId") or not inp.get("volumeId"):
            return None
        for a in conn.compute.volume_attachments(inp["instanceId"]):
            if a.volume_id == inp.get("volumeId"):
                return f"{inp['instanceId']}/{a.id}"
        return None

    scoped = {"project_id": project_id}
    found = {
        T["project"]: named(conn.identity.projects),
        T["user"]: named(conn.identity.users),
        T["flavor"]: named(lambda **kw: [f for f in conn.compute.flavors(is_public=None)
                                          if f.name == kw["name"]]),
        T["network"]: named(net.networks, **scoped),
        T["subnet"]: named(net.subnets, **scoped),
        T["router"]: named(net.routers, **scoped),
        T["security_group"]: named(net.security_groups, **scoped),
        T["port"]: named(net.ports, **scoped),
        T["security_group_rule"]: rule,
        T["floating_ip"]: floating_ip,
        T["router_interface"]: router_interface,
        T["server_group"]: named(lambda **kw: [g for g in conn.compute.server_groups(
            all_projects=True) if g.name == kw["name"] and g.project_id == project_id]),
        T["server"]: named(lambda **kw: conn.compute.servers(
            all_projects=True, name=f"^{kw['name']}$", project_id=project_id)),
        T["volume"]: named(lambda **kw: conn.block_storage.volumes(
            all_projects=True, name=kw["name"], project_id=project_id)),
        VOLUME_ATTACH: volume_attach,
    }
    assert set(found) == OPERATOR_SCOPED | PROJECT_SCOPED
    if project_id is None:  # no project yet: nothing of the project's can exist
        return {k: v for k, v in found.items() if k in OPERATOR_SCOPED}
    return found


def resolve_pending(stack, spec, clouds_file: Optional[str]) -> list[dict]:
    """Adopt or clear the stack's pending creates; returns what was done (empty: nothing pending).

    Adopting is a state edit, not `pulumi refresh --import-pending-creates`: that flag (v3.259)
    turns the op into a pending *import* that no engine step consumes, and the next snapshot drops
    it: the resource left the state while it stayed in the cloud (seen: a router interface and a
    server the next `up` then created again; Neutron 400 "Router already has a port on subnet",
    Nova 409 "port still in use"). Here the pending create's resource (URN, type, parent,
    provider, dependencies, inputs: all recorded by the engine before it asked the provider) gets
    the cloud's id and goes into ``resources``; `pulumi stack import` writes the edited state, and
    a refresh of exactly those resources reads their real outputs."""
    import json

    from stacks.automation import pulumi_cli, workspace_dir
    from yunshang.errors import YunshangError

    exported = json.loads(pulumi_cli(stack, ["stack", "export", "--stack", stack.name]))
    deployment = exported.get("deployment") or {}
    pend = pending_creates(deployment)
    if not pend:
        return []
    from yunshang.openstack import connect

    conn = connect(spec.cloud, clouds_file)
    project = conn.identity.find_project(spec.project.name)
    lookups = _lookups(conn, project.id if project else None)
    adopted, done = [], []
    for res in pend:
        kind, urn, inputs = res.get("type", ""), res.get("urn", ""), res.get("inputs") or {}
        found = None
        if kind.startswith("openstack:") and kind not in RESOLVABLE:
            raise YunshangError(f"stack {stack.name}: the interrupted create of {urn.rsplit('::', 1)[-1]} is of kind "
                                f"{kind}, which yunshang cannot look up in the cloud: check by hand, then "
                                "`pulumi refresh --clear-pending-creates` in the stack's workspace")
        if kind not in IDEMPOTENT and kind in lookups:
            try:
                found = lookups[kind](inputs)
            except Ambiguous as exc:
                raise YunshangError(
                    f"stack {stack.name}: the interrupted create of {urn.rsplit('::', 1)[-1]} ({kind}) matches "
                    f"several objects in the cloud ({exc}): delete the extra ones by hand, then retry") from None
        if found:
            adopted.append({**res, "id": str(found), "outputs": {**inputs, "id": str(found)}})
        done.append({"urn": urn, "type": kind, "action": "adopt" if found else "clear", "id": found})
    deployment["pending_operations"] = [op for op in deployment.get("pending_operations") or []
                                        if op.get("type") != "creating"]
    deployment["resources"] = [*(deployment.get("resources") or []), *adopted]
    f = workspace_dir(spec) / "pending-resolved.json"
    f.write_text(json.dumps(exported))  # secrets stay ciphertext (exported without --show-secrets)
    try:
        pulumi_cli(stack, ["stack", "import", "--file", str(f), "--stack", stack.name])
    finally:
        f.unlink(missing_ok=True)
    if adopted:
        args = ["refresh", "--yes", "--skip-preview", "--stack", stack.name]
        for r in adopted:
            args += ["--target", r["urn"]]
        pulumi_cli(stack, args)
    return done


def clear_stale_engine_lock(stack, backend_url: str) -> list[str]:
    """Remove Pulumi's own lock of the stack left by a killed engine (file:// and postgres://).

    Called with yunshang's stack lock held, so no other yunshang runs this stack. A lock whose
    process (this host) is gone is stale: removed with `pulumi cancel`, and said so. One whose
    process still runs (an engine orphaned by a killed yunshang), or that was taken on another
    host (its process cannot be checked from here), is never ignored: StackBusy names it."""
    import socket

    from stacks.automation import StackBusy, pulumi_cli

    locks = _engine_locks(stack.name, backend_url)
    stale = []
    for info in locks:
        pid, host = int(info.get("pid") or 0), info.get("hostname") or "?"
        who = f"{info.get('username') or '?'}@{host} pid {pid} since {info.get('timestamp') or '?'}"
        if host != socket.gethostname():
            raise StackBusy(f"stack {stack.name}: Pulumi's lock is held by {who}, another host: if that process is "
                            "gone, run `pulumi cancel` in the stack's workspace, then retry")
        if pid > 0 and _alive(pid, b"pulumi"):
            raise StackBusy(f"stack {stack.name}: the engine of an interrupted run ({who}) still holds it: "
                            "wait for it to exit, then retry")
        stale.append(f"removed Pulumi's lock left by {who} (that process is gone)")
    if stale:
        pulumi_cli(stack, ["cancel", "--yes", "--stack", stack.name])
    return stale


def _engine_locks(stack_name: str, backend_url: str) -> list[dict]:
    """The contents of Pulumi's lock files of the stack (`.pulumi/locks/.../<stack>/*.json`)."""
    import base64
    import json
    from pathlib import Path
    from urllib.parse import urlsplit

    out = []
    if backend_url.startswith("file://"):
        d = Path(backend_url[len("file://"):].split("?", 1)[0]) / ".pulumi" / "locks"
        for f in sorted(d.glob(f"*/*/{stack_name}/*.json")) if d.is_dir() else []:
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
    elif backend_url.startswith("postgres://"):
        from stacks.automation import pg_connect

        with pg_connect(backend_url) as (conn, table):
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
            if exists is None:
                return []
            # Pulumi prefixes every key with the URL's path (the database name): "<db>/.pulumi/..."
            sub = urlsplit(backend_url).path.strip("/")
            like = _like(f"{sub}/" if sub else "") + ".pulumi/locks/%/" + _like(stack_name) + "/%.json"
            for (data,) in conn.execute(f'SELECT data FROM "{table}" WHERE key LIKE %s', (like,)):  # noqa: S608
                try:
                    blob = data if isinstance(data, dict) else json.loads(data)
                    out.append(json.loads(base64.b64decode(blob["data"])))
                except (ValueError, KeyError, TypeError):
                    continue
    return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _alive(pid: int, marker: bytes) -> bool:
    """Is ``pid`` a running process whose command line names ``marker`` (a reused pid is not)?"""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return marker in fh.read()
    except OSError:
        return True


def named_objects(spec) -> dict[str, set[str]]:
    """type token -> the names the spec gives objects of that kind inside the department's project
    (the kinds whose API accepts a second object of the same name: a stray one would be duplicated)."""
    n = spec.network
    return {
        T["server"]: {s.name for s in spec.servers},
        T["port"]: {s.port_name for s in spec.servers},
        T["volume"]: {v.name for v in spec.volumes},
        T["network"]: {n.name},
        T["subnet"]: {n.subnet_name},
        T["router"]: {n.router_name},
        T["security_group"]: {g.name for g in spec.security_groups},
        T["server_group"]: {g.name for g in spec.server_groups},
    }


def untracked(wanted: dict[str, set[str]], in_state: dict[str, set[str]], in_cloud: dict[str, set[str]]) -> list[str]:
    """'<kind> <name>' of objects the spec names, that exist in the cloud and that the state does not
    hold: creating them would make a second one."""
    return sorted(f"{kind.rsplit(':', 1)[-1]} {name}" for kind, names in wanted.items()
                  for name in names & in_cloud.get(kind, set()) - in_state.get(kind, set()))


def refuse_untracked(stack, spec, clouds_file: Optional[str]) -> None:
    """Before `up`: an object the spec names that is in the project but not in the state (made by
    hand, by the SDK engine, or left by a state edited by hand) is refused, never duplicated.
    After a killed `up` there is none (every in-flight create is a pending create, resolved first)."""
    import json

    from stacks.automation import pulumi_cli
    from yunshang.errors import YunshangError
    from yunshang.openstack import connect

    conn = connect(spec.cloud, clouds_file)
    project = conn.identity.find_project(spec.project.name)
    if project is None:
        return
    deployment = json.loads(pulumi_cli(stack, ["stack", "export", "--stack", stack.name]))["deployment"]
    in_state: dict[str, set[str]] = {}
    for r in deployment.get("resources") or []:
        if r.get("id") and (r.get("inputs") or {}).get("name"):
            in_state.setdefault(r["type"], set()).add(r["inputs"]["name"])
    pid, net = project.id, conn.network
    in_cloud = {
        T["server"]: {s.name for s in conn.compute.servers(all_projects=True,
                                                                                     project_id=pid)},
        T["port"]: {p.name for p in net.ports(project_id=pid) if p.name},
        T["volume"]: {v.name for v in conn.block_storage.volumes(all_projects=True,
                                                                                            project_id=pid)},
        T["network"]: {x.name for x in net.networks(project_id=pid)},
        T["subnet"]: {x.name for x in net.subnets(project_id=pid)},
        T["router"]: {x.name for x in net.routers(project_id=pid)},
        T["security_group"]: {x.name for x in net.security_groups(project_id=pid)},
        T["server_group"]: {g.name for g in conn.compute.server_groups(all_projects=True)
                                                      if g.project_id in (pid, None)},
    }
    stray = untracked(named_objects(spec), in_state, in_cloud)
    if stray:
        raise YunshangError(f"stack {stack.name}: {len(stray)} object(s) the stack would create already exist in "
                            f"{spec.project.name} outside its state: {', '.join(stray)}. Delete them, or adopt each "
                            "with `pulumi import` in the stack's workspace; refusing to make a second one")
