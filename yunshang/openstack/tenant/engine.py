"""The SDK engine's verbs over all kinds: read, plan, apply (converge), verify, destroy."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable

import openstack.exceptions

from yunshang.admission import ReservationLedger, admit
from yunshang.errors import NotFound
from yunshang.openstack import CLOUD_ERRORS, connect
from yunshang.openstack.tenant.base import (CHANGE_TIMEOUT_SECONDS, ApplyContext, ApplyFailed, DestroyContext, Journal,
                                            Observed, ReadContext, find_project, quota_fields)
from yunshang.openstack.tenant.kinds import ENGINE, ENGINES
from yunshang.redact import exception_text
from yunshang.tenant import (DESTROY_ORDER, OPERATOR_ACCESS_ROLE, Drift, Item, TenantSpec, diff_inventories, kind_rank,
                             spec_inventory)


def quiet_sdk_warnings() -> None:
    """openstacksdk's own deprecation notices (about its API, not the user's input) are noise on
    an engineer's terminal: silence them for CLI runs."""
    import warnings

    from openstack import warnings as osw

    warnings.simplefilter("ignore", osw.OpenStackDeprecationWarning)
    warnings.simplefilter("ignore", osw._RemovedInSDKWarning)  # noqa: SLF001 - the base of RemovedInSDK*0Warning


# --------------------------------------------------------------------------- reading the cloud
def read_tenant(conn, project_name: str, department: str | None, quota_fields: dict | None = None) -> Observed:
    """Read the tenant (project ``project_name``) with an admin connection, in canonical form, kind by kind.

    ``department`` scopes users (``<department>.*``); ``quota_fields`` {service: [field]} limits
    which quota fields are compared (the spec's; None: quotas are not read into the inventory)."""
    p = find_project(conn, project_name)
    obs = Observed(project_id=p.id if p else None)
    if p is None:
        return obs
    rc = ReadContext(conn, p, project_name, department, quota_fields, obs)
    for engine in ENGINES:
        engine.read(rc)
    return obs


# --------------------------------------------------------------------------- preflight + admission
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


ACTION_ORDER = ("delete", "create", "update", "manual", "keep-extra")


def plan_changes(spec: TenantSpec, obs: Observed) -> tuple[list[Change], Drift]:
    """The change list the apply will carry out (pure over the observed state)."""
    drift = diff_inventories(spec_inventory(spec), obs.inventory())
    changes = [Change("create", i.kind, i.name, _fmt_key(i.key)) for i in drift.missing]
    for want, have in drift.different:
        detail = f"{_fmt_key(have.key)} -> {_fmt_key(want.key)}"
        update = ENGINE[want.kind].update
        if update == "in-place" or (update == "if-managed" and want.ref in obs.managed):
            changes.append(Change("update", want.kind, want.name, detail))
        else:
            changes.append(Change("manual", want.kind, want.name, f"differs and cannot change in place: {detail}"))
    for extra in drift.extra:
        if extra.kind == "security_group_rule" and extra.ref in obs.managed:
            changes.append(Change("delete", extra.kind, extra.name, "extra rule in a yunshang-managed group"))
        else:
            changes.append(Change("keep-extra", extra.kind, extra.name, "not in the spec; not created by this apply, "
                                  "left alone" if extra.ref not in obs.managed else
                                  "not in the spec; left alone (destroy removes it)"))
    changes.sort(key=lambda c: (kind_rank(c.kind), ACTION_ORDER.index(c.action), c.name))
    return changes, drift


def _fmt_key(key: tuple) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in key)


# --------------------------------------------------------------------------- apply
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
        ac = ApplyContext(conn, spec, obs, pre, journal, say, dict(obs.ids))
        todo = {(c.kind, c.name): c for c in changes}
        for engine in ENGINES:
            engine.apply(ac, todo)
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
# go with what they belong to, and are never "foreign" (they keep nothing alive)
_DEPENDENT = ("role_assignment", "router_interface")
_HOLDERS = ("project", "router", "subnet", "network")    # stay while foreign objects use them


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
    foreign = [k for k in obs.items if k not in mine and k[0] not in _DEPENDENT + ("project",)]
    plan = [Change("delete", k[0], k[1]) for kind in DESTROY_ORDER for k in sorted(obs.items) if k[0] == kind and
            (k in mine or (kind in _DEPENDENT and not foreign))]
    if foreign:
        plan = [c for c in plan if c.kind not in _HOLDERS]
    for c in plan:
        say(f"  delete {c.kind:20} {c.name}")
    for k in foreign:
        say(f"  keep   {k[0]:20} {k[1]}  (not created by yunshang)")
    if dry_run:
        return plan
    dc = DestroyContext(conn, obs)
    errors: list[str] = []
    for c in plan:
        try:
            said = ENGINE[c.kind].delete(dc, c.name, obs.ids[(c.kind, c.name)])
        except openstack.exceptions.NotFoundException:
            said = True
        except CLOUD_ERRORS as exc:
            errors.append(f"{c.kind} {c.name}: {type(exc).__name__}: {exception_text(exc, limit=120)}")
            continue
        if said:
            say(f"  deleted {c.kind} {c.name}")
    dc.wait_gone("server")
    dc.wait_gone("volume")
    if errors:
        raise ApplyFailed(f"destroy of {department} on {operator} left {len(errors)} object(s): "
                          + "; ".join(errors[:5]) + ("; ..." if len(errors) > 5 else "") + "; run destroy again")
    if obs.project_id is not None and not foreign:
        journal.clear()
    return plan
