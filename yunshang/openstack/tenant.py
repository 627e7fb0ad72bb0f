"""The openstacksdk tenant engine: apply (converge), verify (drift), adopt, destroy.

The Pulumi engine cannot run on air-gapped sites; this applier builds the same TenantSpec
through openstacksdk, bounded to what the spec names:

* plan first: the cloud is read into the core's canonical inventory (kind, name, key inputs)
  and diffed against ``spec_inventory(spec)``; the change list is printed before anything runs;
* creates what is missing, updates what differs where OpenStack allows it in place, and never
  deletes what it did not create (inside a security group yunshang created, rules are converged
  exactly; anything else extra is reported, not touched);
* every object it creates is marked: Keystone project tags (``yunshang`` ...), descriptions
  starting ``yunshang-managed``, Neutron tags ``yunshang``, server/volume metadata
  ``managed-by: yunshang``, flavors named ``dept-<department>.*``;
* each creation is appended (fsync'd) to a journal ``<state>/journal/<operator>/<department>.json``
  before the next step, so a failed apply leaves a record; the next apply resumes (it converges)
  and ``destroy`` removes what the journal and the markers name.

Bad input (unknown department/operator, no contract, unreachable cloud, refused credentials,
missing image/external network/role) is found by ``preflight`` before the first write.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable

import openstack.exceptions

from yunshang.admission import ReservationLedger, admit, state_dir
from yunshang.capacity import DEPARTMENT_TAG_PREFIX, CONTRACT_TAG_PREFIX, MLPS_TAG_PREFIX, PROJECT_TAG
from yunshang.errors import CloudUnavailable, NotFound, YunshangError
from yunshang.openstack import CLOUD_ERRORS, connect
from yunshang.redact import exception_text, redact_url
from yunshang.tenant import (MANAGED_BY, OPERATOR_ACCESS_ROLE, Drift, Item, TenantSpec, diff_inventories,
                             normalise_rule, rule_label, spec_inventory)

MARK = f"{MANAGED_BY}-managed"
NEUTRON_TAG = MANAGED_BY
WAIT_SECONDS = 300


def quiet_sdk_warnings() -> None:
    """openstacksdk's own deprecation notices (about its API, not the user's input) are noise on
    an engineer's terminal: silence them for CLI runs."""
    import warnings

    from openstack import warnings as osw

    warnings.simplefilter("ignore", osw.OpenStackDeprecationWarning)
    warnings.simplefilter("ignore", osw._RemovedInSDKWarning)  # noqa: SLF001 - the base of RemovedInSDK*0Warning


class ApplyFailed(YunshangError):
    """An apply stopped part-way; the journal names what it created."""

    exit_code = 5


# --------------------------------------------------------------------------- journal
class Journal:
    """Append-only record of what an apply created (kind, name, id), fsync'd per entry."""

    def __init__(self, operator: str, department: str, directory: Path | None = None):
        self.path = (Path(directory) if directory else state_dir() / "journal") / operator / f"{department}.json"

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"status": "none", "created": []}

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def start(self) -> None:
        data = self.read()
        data["status"] = "running"
        data["started_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self._write(data)

    def created(self, kind: str, name: str, ident: str) -> None:
        data = self.read()
        data.setdefault("created", []).append({"kind": kind, "name": name, "id": ident})
        self._write(data)

    def finish(self, status: str, error: str = "") -> None:
        data = self.read()
        data["status"] = status
        data["error"] = error
        data["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self._write(data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading the cloud
@dataclass
class Observed:
    """A tenant as read back: canonical items plus the ids and markers behind them."""

    project_id: str | None
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    managed: set[tuple[str, str]] = field(default_factory=set)
    raw: dict[str, object] = field(default_factory=dict)

    def add(self, item: Item, ident: str, managed: bool = False) -> None:
        key = (item[0], item[1])
        self.items[key] = item
        self.ids[key] = ident
        if managed:
            self.managed.add(key)

    def inventory(self) -> frozenset[Item]:
        return frozenset(self.items.values())


def _desc_managed(obj) -> bool:
    return (getattr(obj, "description", None) or "").startswith(MARK)


def project_connection(conn, project_id: str, name: str | None = None, domain_id: str = "default"):
    """A connection with the same credentials scoped to the project (the account needs a role there)."""
    return conn.connect_as_project({"id": project_id, "name": name, "domain_id": domain_id})


def find_project(conn, name: str):
    for p in conn.identity.projects(name=name):
        return p
    return None


def _ext_name(conn, net_id: str | None, cache: dict) -> str:
    if not net_id:
        return ""
    if net_id not in cache:
        n = conn.network.get_network(net_id)
        cache[net_id] = n.name
    return cache[net_id]


def read_tenant(conn, project_name: str, department: str | None, quota_fields: dict | None = None) -> Observed:
    """Read the tenant (project ``project_name``) with an admin connection, in canonical form.

    ``department`` scopes users (``<department>.*``); ``quota_fields`` {service: [field]} limits
    which quota fields are compared (the spec's; None: every field yunshang sets)."""
    p = find_project(conn, project_name)
    obs = Observed(project_id=p.id if p else None)
    if p is None:
        return obs
    pid = p.id
    obs.raw["project"] = p
    obs.add(("project", p.name, (("description", p.description or ""), ("tags", tuple(sorted(p.tags or ()))))),
            pid, PROJECT_TAG in (p.tags or ()))
    me = conn.current_user_id
    roles = {r.id: r.name for r in conn.identity.roles()}
    users = {}
    prefix = f"{department}." if department else None
    for u in conn.identity.users():
        if prefix and u.name.startswith(prefix):
            users[u.id] = u
    assigned_user_ids = set()
    for a in conn.identity.role_assignments(scope_project_id=pid):
        uid = (a.user or {}).get("id")
        rid = (a.role or {}).get("id")
        if not uid or uid == me:
            continue  # the engine's own access role is not part of the tenant
        assigned_user_ids.add(uid)
        if uid not in users:
            try:
                users[uid] = conn.identity.get_user(uid)
            except openstack.exceptions.NotFoundException:
                continue
        obs.add(("role_assignment", f"{users[uid].name}/{roles.get(rid, rid)}", ()), f"{uid}/{rid}")
    for uid, u in users.items():
        if prefix is None and uid not in assigned_user_ids:
            continue
        email = getattr(u, "email", None) or ""
        obs.add(("user", u.name, (("email", email),)), uid, _desc_managed(u))
    # quotas (raw REST: exact API field names)
    fields = quota_fields or {}
    comp = _json(conn.compute.get(f"/os-quota-sets/{pid}"))["quota_set"]
    net = _json(conn.network.get(f"/quotas/{pid}"))["quota"]
    vol = _json(conn.block_storage.get(f"/os-quota-sets/{pid}"))["quota_set"]
    for service, data in (("compute", comp), ("network", net), ("volume", vol)):
        names = fields.get(service)
        if names is None:
            continue
        obs.add(("quota", service, tuple(sorted((k, int(data[k])) for k in names if k in data))), pid)
    # private flavors of the project (named dept-<department>.*)
    for f in conn.compute.flavors(details=True, is_public=None):
        if f.name.startswith(f"{project_name}."):
            obs.add(("flavor", f.name, (("disk_gb", f.disk), ("ram_mb", f.ram), ("vcpus", f.vcpus))), f.id, True)
    # network objects
    names: dict[str, str] = {}
    nets = list(conn.network.networks(project_id=pid))
    for n in nets:
        names[n.id] = n.name
        obs.add(("network", n.name, ()), n.id, NEUTRON_TAG in (n.tags or []) or _desc_managed(n))
    subnets = list(conn.network.subnets(project_id=pid))
    for s in subnets:
        names[s.id] = s.name
        obs.add(("subnet", s.name, (("cidr", s.cidr), ("gateway_ip", s.gateway_ip or ""),
                                    ("network", names.get(s.network_id, s.network_id)))), s.id,
                NEUTRON_TAG in (s.tags or []) or _desc_managed(s))
    ext_cache: dict = {}
    routers = list(conn.network.routers(project_id=pid))
    for r in routers:
        names[r.id] = r.name
        gw = (r.external_gateway_info or {}).get("network_id")
        obs.add(("router", r.name, (("external_network", _ext_name(conn, gw, ext_cache)),)), r.id,
                NEUTRON_TAG in (r.tags or []) or _desc_managed(r))
    ports = list(conn.network.ports(project_id=pid))
    for port in ports:
        if port.device_owner == "network:router_interface":
            for fip in port.fixed_ips or []:
                rname, sname = names.get(port.device_id, port.device_id), names.get(fip.get("subnet_id"), "?")
                obs.add(("router_interface", f"{rname}/{sname}", ()), port.id)
    sgs = list(conn.network.security_groups(project_id=pid))
    for g in sgs:
        names[g.id] = g.name
        if g.name == "default":
            continue  # Neutron's own group of every project
        mg = _desc_managed(g) or NEUTRON_TAG in (g.tags or [])
        obs.add(("security_group", g.name, ()), g.id, mg)
        for r in g.security_group_rules or []:
            rs = normalise_rule(r["direction"], r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"),
                                r.get("remote_ip_prefix"), r.get("ethertype", "IPv4"))
            obs.add(("security_group_rule", rule_label(g.name, rs), ()), r["id"], mg)
    port_of_server: dict[str, str] = {}
    for port in ports:
        if port.device_owner and not port.device_owner.startswith("compute:"):
            continue
        names[port.id] = port.name
        if port.device_id:
            port_of_server.setdefault(port.device_id, port.name)
        obs.add(("port", port.name, (("network", names.get(port.network_id, port.network_id)),
                                     ("security_groups", tuple(sorted(names.get(x, x) for x in port.security_group_ids or ()))))),
                port.id, NEUTRON_TAG in (port.tags or []) or _desc_managed(port))
    # compute
    groups = [g for g in conn.compute.server_groups(all_projects=True) if g.project_id == pid]
    group_of: dict[str, str] = {}
    for g in groups:
        policy = g.policy or (g.policies or [""])[0]
        obs.add(("server_group", g.name, (("policy", policy),)), g.id, True)
        for m in g.member_ids or []:
            group_of[m] = g.name
    image_names: dict[str, str] = {}
    servers = list(conn.compute.servers(details=True, all_projects=True, project_id=pid))
    server_name = {}
    for s in servers:
        server_name[s.id] = s.name
        img = (s.image or {}).get("id") if isinstance(s.image, dict) else getattr(s.image, "id", None)
        if img and img not in image_names:
            try:
                image_names[img] = conn.image.get_image(img).name
            except openstack.exceptions.NotFoundException:
                image_names[img] = img
        fl = s.flavor
        flavor = (fl.get("original_name") or fl.get("name") or fl.get("id")) if isinstance(fl, dict) else \
            (getattr(fl, "original_name", None) or getattr(fl, "name", None) or getattr(fl, "id", ""))
        obs.add(("server", s.name, (("availability_zone", s.availability_zone or ""), ("flavor", flavor or ""),
                                    ("image", image_names.get(img, "")), ("port", port_of_server.get(s.id, "")),
                                    ("server_group", group_of.get(s.id, "")))),
                s.id, (s.metadata or {}).get("managed-by") == MANAGED_BY)
    for v in conn.block_storage.volumes(details=True, all_projects=True, project_id=pid):
        att = [a.get("server_id") for a in v.attachments or []]
        obs.add(("volume", v.name, (("server", server_name.get(att[0], att[0]) if att else ""), ("size_gb", v.size))),
                v.id, (v.metadata or {}).get("managed-by") == MANAGED_BY)
    server_of_port = {p.id: server_name.get(p.device_id, "") for p in ports}
    for ip in conn.network.ips(project_id=pid):
        d = ip.description or ""
        name = d[len(MARK) + 1:] if d.startswith(MARK + " ") else (d or ip.floating_ip_address)
        obs.add(("floating_ip", name, (("pool", _ext_name(conn, ip.floating_network_id, ext_cache)),
                                       ("server", server_of_port.get(ip.port_id, "") if ip.port_id else ""))),
                ip.id, d.startswith(MARK))
    return obs


def _json(resp) -> dict:
    if resp.status_code >= 400:
        raise CloudUnavailable(f"{resp.request.method} {redact_url(resp.url)}: HTTP {resp.status_code}")
    return resp.json()


def quota_fields(spec: TenantSpec) -> dict[str, list[str]]:
    return {k: list(v) for k, v in spec.quotas.as_dict().items()}


# --------------------------------------------------------------------------- preflight + admission
# Changing calls (router gateways, floating IPs, volume attachments) can take long on a loaded
# cloud; a timeout mid-create would leave an object the journal does not know (markers still do).
CHANGE_TIMEOUT_SECONDS = 120


def open_operator(spec: TenantSpec, clouds_file: str | None):
    """Connect to the spec's operator (explicit cloud), or CloudUnavailable in one line."""
    return connect(spec.cloud, clouds_file, timeout_seconds=CHANGE_TIMEOUT_SECONDS)


def preflight(conn, spec: TenantSpec) -> dict:
    """Everything the apply will need that it does not create; raises before the first write."""
    problems = []
    ext = conn.network.find_network(spec.network.external_network)
    if ext is None or not ext.is_router_external:
        problems.append(f"external network {spec.network.external_network!r} not found (or not external)")
    images = {}
    for name in sorted({s.image for s in spec.servers}):
        found = [i for i in conn.image.images(name=name)]
        if not found:
            problems.append(f"image {name!r} not found")
        else:
            images[name] = found[0].id
    roles = {}
    for name in sorted({a.role for a in spec.role_assignments} | {OPERATOR_ACCESS_ROLE}):
        r = conn.identity.find_role(name)
        if r is None:
            problems.append(f"role {name!r} not found")
        else:
            roles[name] = r.id
    zones = {z.name for z in conn.compute.availability_zones() if (z.state or {}).get("available", True)}
    for z in sorted({s.availability_zone for s in spec.servers} - zones):
        problems.append(f"availability zone {z!r} not on this cloud (has: {', '.join(sorted(zones)) or 'none'})")
    if problems:
        raise NotFound(f"operator {spec.operator} (cloud {spec.cloud}): cannot apply tenant {spec.department}: "
                       + "; ".join(problems))
    return {"external_network_id": ext.id, "images": images, "roles": roles}


@dataclass
class AdmissionHandle:
    ledger: ReservationLedger | None
    department: str
    reserved: dict

    def release(self) -> None:
        if self.ledger is not None and self.reserved:
            self.ledger.release(self.department)


def admit_live(spec: TenantSpec, clouds_file: str | None, existing_servers: Iterable[str] = (),
               existing_volumes: Iterable[str] = (), ledger_dir: Path | None = None) -> AdmissionHandle:
    """Admission against the operator's live Placement + the department's quota usage, under the
    operator's reservation-ledger lock. Raises QuotaExceeded / CloudUnavailable."""
    from yunshang.openstack.capacity import read_operator_snapshot

    provider = SimpleNamespace(name=spec.operator, cloud=spec.cloud)
    ledger = ReservationLedger(spec.operator, ledger_dir)
    a = admit(spec, lambda: read_operator_snapshot(provider, clouds_file, (spec.department,)), ledger,
              existing_servers=existing_servers, existing_volumes=existing_volumes)
    return AdmissionHandle(ledger, spec.department, dict(a.reserved))


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Change:
    action: str          # create | update | delete | keep-extra | manual
    kind: str
    name: str
    detail: str = ""

    def as_dict(self) -> dict:
        return {"action": self.action, "kind": self.kind, "name": self.name, "detail": self.detail}


UPDATABLE = {"project", "user", "quota", "router", "port", "floating_ip"}


def plan_changes(spec: TenantSpec, obs: Observed) -> tuple[list[Change], Drift]:
    """The change list the apply will carry out (pure over the observed state)."""
    drift = diff_inventories(spec_inventory(spec), obs.inventory())
    changes = [Change("create", i[0], i[1], _fmt_key(i[2])) for i in drift.missing]
    for want, have in drift.different:
        kind = want[0]
        detail = f"{_fmt_key(have[2])} -> {_fmt_key(want[2])}"
        if kind in UPDATABLE:
            changes.append(Change("update", kind, want[1], detail))
        elif kind in ("flavor", "volume") and (kind, want[1]) in obs.managed:
            changes.append(Change("update", kind, want[1], detail))  # flavor: replace; volume: resize/attach
        else:
            changes.append(Change("manual", kind, want[1], f"differs and cannot change in place: {detail}"))
    for item in drift.extra:
        key = (item[0], item[1])
        if item[0] == "security_group_rule" and key in obs.managed:
            changes.append(Change("delete", item[0], item[1], "extra rule in a yunshang-managed group"))
        else:
            changes.append(Change("keep-extra", item[0], item[1], "not in the spec; not created by this apply, left alone"
                                  if key not in obs.managed else "not in the spec; left alone (destroy removes it)"))
    order = ["delete", "create", "update", "manual", "keep-extra"]
    from yunshang.tenant import KIND_ORDER

    changes.sort(key=lambda c: (KIND_ORDER.index(c.kind) if c.kind in KIND_ORDER else 99, order.index(c.action), c.name))
    return changes, drift


def _fmt_key(key: tuple) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in key)


# --------------------------------------------------------------------------- apply
class _Converger:
    def __init__(self, conn, spec: TenantSpec, obs: Observed, pre: dict, journal: Journal,
                 say: Callable[[str], None]):
        self.conn, self.spec, self.obs, self.pre, self.journal, self.say = conn, spec, obs, pre, journal, say
        self.ids = dict(obs.ids)
        self.pconn = None

    def _made(self, kind: str, name: str, ident: str) -> None:
        self.ids[(kind, name)] = ident
        self.journal.created(kind, name, ident)
        self.say(f"  created {kind} {name}")

    def project_conn(self):
        if self.pconn is None:
            self.pconn = project_connection(self.conn, self.ids[("project", self.spec.project.name)],
                                            self.spec.project.name, self.spec.project.domain)
        return self.pconn

    # each step: create when missing, update when different
    def run(self, changes: list[Change]) -> None:
        todo = {(c.kind, c.name): c for c in changes}
        spec, conn = self.spec, self.conn
        p = spec.project
        c = todo.get(("project", p.name))
        if c and c.action == "create":
            proj = conn.identity.create_project(name=p.name, description=p.description, tags=list(p.tags),
                                                domain_id=p.domain, is_enabled=True)
            self._made("project", p.name, proj.id)
        elif c and c.action == "update":
            conn.identity.update_project(self.ids[("project", p.name)], description=p.description, tags=list(p.tags))
            self.say(f"  updated project {p.name}")
        pid = self.ids[("project", p.name)]
        # the engine's own access to act inside the project (not part of the tenant's inventory)
        me = conn.current_user_id
        admin_role = self.pre["roles"][OPERATOR_ACCESS_ROLE]
        if not conn.identity.validate_user_has_project_role(pid, me, admin_role):
            conn.identity.assign_project_role_to_user(pid, me, admin_role)
        for u in spec.users:
            c = todo.get(("user", u.name))
            if c and c.action == "create":
                kw = {"email": u.email} if u.email else {}
                user = conn.identity.create_user(name=u.name, description=u.description, default_project_id=pid,
                                                 domain_id=p.domain, is_enabled=True, **kw)
                self._made("user", u.name, user.id)
            elif c and c.action == "update":
                conn.identity.update_user(self.ids[("user", u.name)], email=u.email, description=u.description)
                self.say(f"  updated user {u.name}")
        for a in spec.role_assignments:
            c = todo.get(("role_assignment", f"{a.user}/{a.role}"))
            if c and c.action == "create":
                uid = self.ids[("user", a.user)]
                conn.identity.assign_project_role_to_user(pid, uid, self.pre["roles"][a.role])
                self._made("role_assignment", f"{a.user}/{a.role}", f"{uid}/{self.pre['roles'][a.role]}")
        q = spec.quotas.as_dict()
        for service, path, body_key, adapter in (("compute", f"/os-quota-sets/{pid}", "quota_set", conn.compute),
                                                 ("network", f"/quotas/{pid}", "quota", conn.network),
                                                 ("volume", f"/os-quota-sets/{pid}", "quota_set", conn.block_storage)):
            if ("quota", service) in todo:
                _json(adapter.put(path, json={body_key: q[service]}))
                self.say(f"  set {service} quota {q[service]}")
        for f in spec.flavors:
            c = todo.get(("flavor", f.name))
            if c and c.action == "update":  # ours and different: replace
                conn.compute.delete_flavor(self.ids[("flavor", f.name)])
            if c and c.action in ("create", "update"):
                fl = conn.compute.create_flavor(name=f.name, vcpus=f.vcpus, ram=f.ram_mb, disk=f.disk_gb, is_public=False)
                conn.compute.flavor_add_tenant_access(fl, pid)
                self._made("flavor", f.name, fl.id)
            elif ("flavor", f.name) in self.ids:
                fid = self.ids[("flavor", f.name)]
                if not any(x.get("tenant_id") == pid for x in conn.compute.get_flavor_access(fid)):
                    conn.compute.flavor_add_tenant_access(fid, pid)
        self._network(todo, pid)
        self._compute(todo, pid)

    def _network(self, todo, pid) -> None:
        spec, n, net_api = self.spec, self.spec.network, self.conn.network
        if ("network", n.name) in todo:
            net = net_api.create_network(name=n.name, project_id=pid, description=MARK)
            net_api.set_tags(net, [NEUTRON_TAG])
            self._made("network", n.name, net.id)
        if ("subnet", n.subnet_name) in todo:
            c = todo[("subnet", n.subnet_name)]
            if c.action == "create":
                sn = net_api.create_subnet(name=n.subnet_name, network_id=self.ids[("network", n.name)], ip_version=4,
                                           cidr=n.cidr, gateway_ip=n.gateway_ip, project_id=pid, description=MARK)
                net_api.set_tags(sn, [NEUTRON_TAG])
                self._made("subnet", n.subnet_name, sn.id)
        c = todo.get(("router", n.router_name))
        gw = {"network_id": self.pre["external_network_id"]}
        if c and c.action == "create":
            r = net_api.create_router(name=n.router_name, project_id=pid, description=MARK, external_gateway_info=gw)
            net_api.set_tags(r, [NEUTRON_TAG])
            self._made("router", n.router_name, r.id)
        elif c and c.action == "update":
            net_api.update_router(self.ids[("router", n.router_name)], external_gateway_info=gw)
            self.say(f"  updated router {n.router_name} gateway")
        if ("router_interface", f"{n.router_name}/{n.subnet_name}") in todo:
            r = net_api.add_interface_to_router(self.ids[("router", n.router_name)],
                                                subnet=self.ids[("subnet", n.subnet_name)])
            self._made("router_interface", f"{n.router_name}/{n.subnet_name}", r.get("port_id", ""))
        for g in spec.security_groups:
            if ("security_group", g.name) in todo:
                sg = net_api.create_security_group(name=g.name, description=g.description if g.description.startswith(MARK)
                                                   else f"{MARK} {g.description}", project_id=pid)
                for r in sg.security_group_rules or []:  # Neutron's default egress rules: the spec lists all
                    net_api.delete_security_group_rule(r["id"])
                net_api.set_tags(sg, [NEUTRON_TAG])
                self._made("security_group", g.name, sg.id)
        for key, c in todo.items():
            if c.kind == "security_group_rule" and c.action == "delete":
                net_api.delete_security_group_rule(self.ids[key])
                self.say(f"  deleted extra rule {c.name}")
        for g in spec.security_groups:
            for r in g.rules:
                label = rule_label(g.name, r)
                if ("security_group_rule", label) in todo:
                    rule = net_api.create_security_group_rule(
                        security_group_id=self.ids[("security_group", g.name)], direction=r.direction,
                        ethertype=r.ethertype, protocol=r.protocol, port_range_min=r.port_min,
                        port_range_max=r.port_max, remote_ip_prefix=r.remote_cidr, description=r.description,
                        project_id=pid)
                    self._made("security_group_rule", label, rule.id)
        for s in spec.servers:
            c = todo.get(("port", s.port_name))
            sg_ids = [self.ids[("security_group", x)] for x in s.security_groups]
            if c and c.action == "create":
                port = net_api.create_port(name=s.port_name, network_id=self.ids[("network", n.name)], project_id=pid,
                                           fixed_ips=[{"subnet_id": self.ids[("subnet", n.subnet_name)]}],
                                           security_group_ids=sg_ids, description=MARK)
                net_api.set_tags(port, [NEUTRON_TAG])
                self._made("port", s.port_name, port.id)
            elif c and c.action == "update":
                net_api.update_port(self.ids[("port", s.port_name)], security_group_ids=sg_ids)
                self.say(f"  updated port {s.port_name} security groups")

    def _compute(self, todo, pid) -> None:
        spec = self.spec
        need_project = any(c.kind in ("server_group", "server", "volume", "floating_ip") and c.action in ("create", "update")
                           for c in todo.values())
        if not need_project:
            return
        pc = self.project_conn()
        for g in spec.server_groups:
            if ("server_group", g.name) in todo:
                sg = pc.compute.create_server_group(name=g.name, policies=[g.policy])
                self._made("server_group", g.name, sg.id)
        created = []
        for s in spec.servers:
            if ("server", s.name) not in todo or todo[("server", s.name)].action != "create":
                continue
            hints = {"group": self.ids[("server_group", s.server_group)]} if s.server_group else None
            kw = {"scheduler_hints": hints} if hints else {}
            if s.user_data:
                kw["user_data"] = base64.b64encode(s.user_data.encode()).decode()
            srv = pc.compute.create_server(
                name=s.name, flavor_id=self.ids[("flavor", s.flavor)], image_id=self.pre["images"][s.image],
                availability_zone=s.availability_zone, networks=[{"port": self.ids[("port", s.port_name)]}],
                metadata={"managed-by": MANAGED_BY, "department": spec.department, "request": s.request,
                          "role": s.role}, **kw)
            self._made("server", s.name, srv.id)
            created.append(srv)
        for srv in created:
            pc.compute.wait_for_server(srv, status="ACTIVE", wait=WAIT_SECONDS)
        vols = []
        for v in spec.volumes:
            c = todo.get(("volume", v.name))
            if c and c.action == "create":
                vol = pc.block_storage.create_volume(name=v.name, size=v.size_gb, description=f"{MARK} volume of {v.server}",
                                                     metadata={"managed-by": MANAGED_BY})
                self._made("volume", v.name, vol.id)
                vols.append((v, vol))
            elif c and c.action == "update":
                vols.append((v, pc.block_storage.get_volume(self.ids[("volume", v.name)])))
        for v, vol in vols:
            vol = pc.block_storage.wait_for_status(vol, status="available", failures=["error"], wait=WAIT_SECONDS) \
                if vol.status != "in-use" else vol
            if vol.size < v.size_gb:
                pc.block_storage.extend_volume(vol, v.size_gb)
            if not vol.attachments:
                pc.compute.create_volume_attachment(self.ids[("server", v.server)], volume_id=vol.id)
                pc.block_storage.wait_for_status(vol, status="in-use", failures=["error"], wait=WAIT_SECONDS)
                self.say(f"  attached volume {v.name} to {v.server}")
        for f in spec.floating_ips:
            c = todo.get(("floating_ip", f.name))
            port_id = self.ids[("port", f"{f.server}-port")]
            if c and c.action == "create":
                ip = pc.network.create_ip(floating_network_id=self.pre["external_network_id"], port_id=port_id,
                                          description=f"{MARK} {f.name}")
                self._made("floating_ip", f.name, ip.id)
            elif c and c.action == "update":
                self.conn.network.update_ip(self.ids[("floating_ip", f.name)], port_id=port_id)
                self.say(f"  re-associated floating ip {f.name}")


@dataclass
class ApplyResult:
    stack: str
    dry_run: bool
    changes: list[Change]
    applied: bool
    remaining: Drift | None = None

    def as_dict(self) -> dict:
        return {"stack": self.stack, "dry_run": self.dry_run, "applied": self.applied,
                "changes": [c.as_dict() for c in self.changes],
                "remaining_drift": self.remaining.as_dict() if self.remaining else None}


def apply_spec(spec: TenantSpec, clouds_file: str | None, *, dry_run: bool = False,
               say: Callable[[str], None] = lambda m: None, state: Path | None = None,
               admission: bool = True) -> dict:
    """Converge ``spec`` on its operator. Plan first (``say`` gets it), then apply unless dry-run."""
    return apply_tenant(spec, clouds_file, dry_run=dry_run, say=say, state=state, admission=admission).as_dict()


def apply_tenant(spec: TenantSpec, clouds_file: str | None, *, dry_run: bool = False,
                 say: Callable[[str], None] = lambda m: None, state: Path | None = None,
                 admission: bool = True) -> ApplyResult:
    conn = open_operator(spec, clouds_file)
    pre = preflight(conn, spec)
    journal = Journal(spec.operator, spec.department, (state / "journal") if state else None)
    previous = journal.read()
    if previous.get("status") in ("running", "failed"):
        say(f"resuming: the last apply of {spec.stack_name} stopped part-way "
            f"({len(previous.get('created', []))} objects recorded in {journal.path})")
    obs = read_tenant(conn, spec.project.name, spec.department, quota_fields(spec))
    changes, _ = plan_changes(spec, obs)
    say(f"plan for {spec.stack_name} (cloud {spec.cloud}, project {spec.project.name}):")
    actionable = [c for c in changes if c.action in ("create", "update", "delete")]
    for c in changes:
        say(f"  {c.action:10} {c.kind:20} {c.name}  {c.detail}".rstrip())
    if not actionable:
        say("  nothing to change")
    if dry_run or not actionable:
        return ApplyResult(spec.stack_name, dry_run, changes, False,
                           diff_inventories(spec_inventory(spec), obs.inventory()))
    handle = None
    if admission:
        existing = [n for (k, n) in obs.items if k == "server"]
        existing_v = [n for (k, n) in obs.items if k == "volume"]
        handle = admit_live(spec, clouds_file, existing, existing_v,
                            ledger_dir=(state / "admission") if state else None)
    journal.start()
    try:
        _Converger(conn, spec, obs, pre, journal, say).run(changes)
    except (*CLOUD_ERRORS, KeyError) as exc:
        msg = f"{type(exc).__name__}: {exception_text(exc, limit=200)}"
        journal.finish("failed", msg)
        raise ApplyFailed(f"apply of {spec.stack_name} stopped: {msg}; what it created is recorded in "
                          f"{journal.path}; run apply again to finish, or tenant destroy") from None
    finally:
        if handle is not None:
            handle.release()
    journal.finish("done")
    after = read_tenant(conn, spec.project.name, spec.department, quota_fields(spec))
    remaining = diff_inventories(spec_inventory(spec), after.inventory())
    return ApplyResult(spec.stack_name, False, changes, True, remaining)


# --------------------------------------------------------------------------- verify
def verify_tenant(spec: TenantSpec, clouds_file: str | None) -> Drift:
    conn = open_operator(spec, clouds_file)
    obs = read_tenant(conn, spec.project.name, spec.department, quota_fields(spec))
    return diff_inventories(spec_inventory(spec), obs.inventory())


def read_inventory(spec: TenantSpec, clouds_file: str | None) -> frozenset[Item]:
    conn = open_operator(spec, clouds_file)
    return read_tenant(conn, spec.project.name, spec.department, quota_fields(spec)).inventory()


# --------------------------------------------------------------------------- destroy
DESTROY_ORDER = ("floating_ip", "volume", "server", "port", "server_group", "router_interface", "security_group_rule",
                 "security_group", "router", "subnet", "network", "flavor", "role_assignment", "user", "project")


def destroy_tenant(cloud: str, operator: str, department: str, clouds_file: str | None, *,
                   dry_run: bool = False, say: Callable[[str], None] = lambda m: None,
                   state: Path | None = None) -> list[Change]:
    """Remove what yunshang created for ``department`` on ``operator``: objects the journal records
    or that carry yunshang's markers. Anything else in the project is left, and then the project
    too (a project holding foreign objects is not deleted)."""
    from yunshang.capacity import project_name

    conn = connect(cloud, clouds_file, timeout_seconds=CHANGE_TIMEOUT_SECONDS)
    pname = project_name(department)
    journal = Journal(operator, department, (state / "journal") if state else None)
    recorded = {(e["kind"], e["name"]) for e in journal.read().get("created", [])}
    obs = read_tenant(conn, pname, department, None)
    mine = {k for k in obs.items if k in obs.managed or k in recorded}
    foreign = [k for k in obs.items if k not in mine and k[0] not in ("role_assignment", "router_interface", "project")]
    plan = [Change("delete", k[0], k[1]) for kind in DESTROY_ORDER for k in sorted(obs.items) if k[0] == kind and
            (k in mine or (kind in ("role_assignment", "router_interface") and not foreign))]
    if foreign:  # the network they sit on, and the project, stay while foreign objects use them
        plan = [c for c in plan if c.kind not in ("project", "router", "subnet", "network")]
    for c in plan:
        say(f"  delete {c.kind:20} {c.name}")
    for k in foreign:
        say(f"  keep   {k[0]:20} {k[1]}  (not created by yunshang)")
    if dry_run:
        return plan
    pid = obs.project_id
    waits: list = []
    errors: list[str] = []
    for c in plan:
        ident = obs.ids[(c.kind, c.name)]
        try:
            if c.kind == "floating_ip":
                conn.network.delete_ip(ident)
            elif c.kind == "volume":
                vol = conn.block_storage.get_volume(ident)
                for a in vol.attachments or []:
                    conn.compute.delete_volume_attachment(a["server_id"], ident)
                if vol.attachments:
                    conn.block_storage.wait_for_status(vol, status="available", failures=["error"], wait=WAIT_SECONDS)
                conn.block_storage.delete_volume(ident)
                waits.append(("volume", ident))
            elif c.kind == "server":
                conn.compute.delete_server(ident)
                waits.append(("server", ident))
            elif c.kind == "port":
                _wait_gone(conn, waits, "server")
                conn.network.delete_port(ident)
            elif c.kind == "server_group":
                conn.compute.delete_server_group(ident)
            elif c.kind == "router_interface":
                rname = c.name.split("/", 1)[0]
                conn.network.remove_interface_from_router(obs.ids[("router", rname)], port=ident)
            elif c.kind == "security_group_rule":
                continue  # go with their group
            elif c.kind == "security_group":
                conn.network.delete_security_group(ident)
            elif c.kind == "router":
                conn.network.update_router(ident, external_gateway_info={})
                conn.network.delete_router(ident)
            elif c.kind == "subnet":
                conn.network.delete_subnet(ident)
            elif c.kind == "network":
                conn.network.delete_network(ident)
            elif c.kind == "flavor":
                conn.compute.delete_flavor(ident)
            elif c.kind == "role_assignment":
                continue  # removed with the user/project
            elif c.kind == "user":
                conn.identity.delete_user(ident)
            elif c.kind == "project":
                _wait_gone(conn, waits, "volume")
                conn.identity.delete_project(ident)
        except openstack.exceptions.NotFoundException:
            pass
        except CLOUD_ERRORS as exc:
            errors.append(f"{c.kind} {c.name}: {type(exc).__name__}: {exception_text(exc, limit=120)}")
            continue
        say(f"  deleted {c.kind} {c.name}")
    _wait_gone(conn, waits, "server")
    _wait_gone(conn, waits, "volume")
    if errors:
        raise ApplyFailed(f"destroy of {department} on {operator} left {len(errors)} object(s): "
                          + "; ".join(errors[:5]) + ("; ..." if len(errors) > 5 else "") + "; run destroy again")
    if pid is not None and not foreign:
        journal.clear()
    return plan


def _wait_gone(conn, waits: list, kind: str) -> None:
    for k, ident in [w for w in waits if w[0] == kind]:
        getter = conn.compute.get_server if kind == "server" else conn.block_storage.get_volume
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                getter(ident)
            except openstack.exceptions.NotFoundException:
                break
            time.sleep(0.5)
        waits.remove((k, ident))


# --------------------------------------------------------------------------- adopt
PULUMI_TYPES = {
    "project": "openstack:identity/project:Project", "user": "openstack:identity/user:User",
    "flavor": "openstack:compute/flavor:Flavor", "network": "openstack:networking/network:Network",
    "subnet": "openstack:networking/subnet:Subnet", "router": "openstack:networking/router:Router",
    "router_interface": "openstack:networking/routerInterface:RouterInterface",
    "security_group": "openstack:networking/secGroup:SecGroup",
    "security_group_rule": "openstack:networking/secGroupRule:SecGroupRule",
    "server_group": "openstack:compute/serverGroup:ServerGroup", "port": "openstack:networking/port:Port",
    "server": "openstack:compute/instance:Instance", "volume": "openstack:blockstorage/volume:Volume",
    "floating_ip": "openstack:networking/floatingIp:FloatingIp",
}


def adopt_project(cloud: str, operator: str, project: str, clouds_file: str | None, *,
                  today: dt.date | None = None) -> tuple[dict, dict, dict]:
    """Read an existing project; return (department file, template file, Pulumi import file) as data.

    The department file is in catalog format (contracts from ``contract:`` tags, or a placeholder
    for the engineer to fill in); servers are grouped into requests by name (``<name>-NN``) and
    flavor; the template carries the flavors as sizes and the project's ingress/egress rules."""
    conn = connect(cloud, clouds_file)
    p = find_project(conn, project)
    if p is None:
        raise NotFound(f"operator {operator} (cloud {cloud}): no project named {project!r}")
    tags = list(p.tags or [])
    dept = next((t[len(DEPARTMENT_TAG_PREFIX):] for t in tags if t.startswith(DEPARTMENT_TAG_PREFIX)), None) \
        or (project[5:] if project.startswith("dept-") else project)
    level = next((int(t[len(MLPS_TAG_PREFIX):]) for t in tags if t.startswith(MLPS_TAG_PREFIX)), 3)
    obs = read_tenant(conn, project, None, None)
    today = today or dt.date.today()
    flavors = {f.name: f for f in conn.compute.flavors(details=True, is_public=None)}
    # requests: servers grouped by base name and flavor
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for (kind, name), item in sorted(obs.items.items()):
        if kind != "server":
            continue
        key = dict(item[2])
        base = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        groups.setdefault((base, key["flavor"]), []).append((name, key["availability_zone"]))
    sizes, requests = {}, []
    for (base, flavor), members in sorted(groups.items()):
        f = flavors.get(flavor)
        size = _size_name(f, flavor)
        if f is not None:
            sizes[size] = {"vcpu": f.vcpus, "ram_gb": max(1, f.ram // 1024), "disk_gb": f.disk}
        zones = sorted({z for _, z in members})
        requests.append({"name": _slug(base), "template": f"adopted-{_slug(dept)}", "size": size,
                         "count": len(members), "ha": len(zones) > 1})
    users = []
    for (kind, name), item in sorted(obs.items.items()):
        if kind == "role_assignment":
            uname, role = name.rsplit("/", 1)
            users.append({"name": uname, "role": role})
    contracts = [{"id": t[len(CONTRACT_TAG_PREFIX):], "provider": operator, "role": "primary",
                  "start": today.isoformat(), "end": today.replace(year=today.year + 3).isoformat(),
                  "ceiling_cny_per_month": 0} for t in tags if t.startswith(CONTRACT_TAG_PREFIX)] or \
        [{"id": f"ADOPTED-{_slug(dept).upper()}-{operator.upper()}", "provider": operator, "role": "primary",
          "start": today.isoformat(), "end": today.replace(year=today.year + 3).isoformat(),
          "ceiling_cny_per_month": 0}]
    department = {"name": _slug(dept), "display_name": p.description or dept, "mlps_level": level,
                  "contracts": contracts, "requests": requests, "users": users}
    ingress, egress = [], []
    for g in conn.network.security_groups(project_id=obs.project_id):
        if g.name == "default":
            continue
        for r in g.security_group_rules or []:
            rs = normalise_rule(r["direction"], r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"),
                                r.get("remote_ip_prefix"), r.get("ethertype", "IPv4"))
            if rs.ethertype != "IPv4":
                continue
            d = {"protocol": rs.protocol or "any", "remote_cidr": rs.remote_cidr}
            if rs.port_min is not None:
                d.update({"port_min": rs.port_min, "port_max": rs.port_max})
            (ingress if rs.direction == "ingress" else egress).append(d)
    fips_per_server = {}
    for (kind, name), item in obs.items.items():
        if kind == "floating_ip":
            srv = dict(item[2]).get("server")
            fips_per_server[srv] = fips_per_server.get(srv, 0) + 1
    images = sorted({dict(i[2])["image"] for (k, _), i in obs.items.items() if k == "server"})
    template = {"name": f"adopted-{_slug(dept)}", "image": images[0] if images else "cirros",
                "floating_ips": max(fips_per_server.values()) if fips_per_server else 0,
                "sizes": sizes or {"small": {"vcpu": 1, "ram_gb": 1, "disk_gb": 1}},
                "ingress": _dedupe(ingress), "egress": _dedupe(egress)}
    imports = {"resources": [
        {"type": PULUMI_TYPES[kind], "name": name, "id": _import_id(kind, obs.ids[(kind, name)])}
        for (kind, name) in sorted(obs.items, key=lambda k: (DESTROY_ORDER[::-1].index(k[0])
                                                              if k[0] in DESTROY_ORDER else 99, k[1]))
        if kind in PULUMI_TYPES]}
    return department, template, imports


def _import_id(kind: str, ident: str) -> str:
    return ident


def _size_name(f, flavor: str) -> str:
    if f is None:
        return _slug(flavor)
    return f"c{f.vcpus}r{max(1, f.ram // 1024)}d{f.disk}"


def _slug(s: str) -> str:
    import re

    return re.sub(r"[^a-z0-9-]+", "-", s.lower()).strip("-") or "x"


def _dedupe(rules: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rules:
        k = tuple(sorted(r.items()))
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out
