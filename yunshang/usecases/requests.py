"""Request use cases: submit, endorse, review, approve, reject, configure, publish, monitor,
reclaim (plan, confirm), keep; reads (list, show, audit log, capacity, what a department may order)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from yunshang import lifecycle as lc
from yunshang.authz import Identity, authorize, sees_department
from yunshang.errors import CloudUnavailable, InputInvalid, NotFound, ToolMissing, YunshangError
from yunshang.plans import approved_plan
from yunshang.sites import with_committed
from yunshang.usecases import Deps


class NotPlaceable(YunshangError):
    """Review found no placement for (part of) the request."""

    exit_code = 3


def _load(deps: Deps, who: Identity, request_id: int, action: str):
    """The record, once ``who`` may act on it (another department's record: as if it did not exist)."""
    rec = deps.store.get(request_id)
    authorize(who, action, rec.department, hide_existence=True)
    return rec


def _chain(deps: Deps, who: Identity, rec, action: str) -> None:
    why = lc.chain_refusal(rec.state, action, who.actor, deps.store.audit_log(subject=f"request:{rec.id}"),
                           _cost(rec), deps.catalog.approval)
    if why:
        raise lc.TransitionRefused(f"{action} request {rec.id}: {why}")


def _cost(rec) -> float:
    return round(sum(p.monthly_cost_cny for p in rec.placements), 2)


def _notify(deps: Deps, event: str, rec, waiting_for: str) -> None:
    if deps.notify is not None:
        deps.notify(event, rec, waiting_for)


def department_level(catalog):
    def level(name: str):
        try:
            return catalog.department(name).mlps_level
        except KeyError:
            return None
    return level


# --------------------------------------------------------------------------- steps
def submit(deps: Deps, who: Identity, doc: lc.RequestDocument | dict, source: str = "") -> Any:
    """A requester submits a request document for their own department."""
    authorize(who, "request.submit")
    if not isinstance(doc, lc.RequestDocument):
        from yunshang.catalog import request_document

        doc = request_document(doc, source or "request", department_level(deps.catalog))
    authorize(who, "request.submit", doc.department)
    problems = lc.validate_against_catalog(doc, deps.catalog, source or "request")
    if problems:
        raise InputInvalid(problems)
    rec = deps.store.submit(doc, by=who.actor, source_file=source)
    _notify(deps, "submitted", rec, "department-head" if deps.catalog.approval.department_head_endorses
            else "reviewer")
    return rec


def endorse(deps: Deps, who: Identity, request_id: int) -> Any:
    rec = _load(deps, who, request_id, "request.endorse")
    rec = deps.store.endorse(request_id, who.actor)
    _notify(deps, "endorsed", rec, "reviewer")
    return rec


def live_usage(catalog, clouds_file: str, notes: list[str]):
    """Live used capacity per zone from each operator's Placement (through yunshang.openstack)."""
    from yunshang.capacity import ZoneCapacity, to_usage
    from yunshang.openstack import cloud_names
    from yunshang.openstack.capacity import read_operator_snapshot

    defined = set(cloud_names(clouds_file))
    zones: list[ZoneCapacity] = []
    for prov in catalog.providers:
        if prov.cloud not in defined:
            notes.append(f"operator {prov.name}: cloud {prov.cloud!r} not in {clouds_file}; live usage not read")
            continue
        snap = read_operator_snapshot(prov, clouds_file)
        if not snap.ok:
            raise CloudUnavailable(f"operator {prov.name}: {snap.error}")
        zones.extend(snap.zones)
    return to_usage(zones)


def review(deps: Deps, who: Identity, request_id: int, day: dt.date | None = None,
           live: bool = False) -> tuple[Any, list[str]]:
    """Place the request against catalog, contracts, recorded reservations (and live usage); record it."""
    from yunshang.placement import place
    from yunshang.store import CapacityRow

    store, catalog = deps.store, deps.catalog
    rec = _load(deps, who, request_id, "request.review")
    lc.transition(rec.state, "review", who.actor)
    _chain(deps, who, rec, "review")
    doc = lc.parse_request_document(rec.document, f"request {request_id}", catalog=catalog)
    problems = lc.validate_against_catalog(doc, catalog, f"request {request_id}")
    if problems:
        raise InputInvalid(problems)
    day = day or deps.today()
    usage = lc.reserved_usage(store.capacity())
    notes: list[str] = []
    if live and deps.clouds_file:
        got = live_usage(catalog, deps.clouds_file, notes)
        usage = lc.merge_usage(usage, got)
        notes.append(f"live usage read from {len(got)} zones")
    committed = lc.committed_cost_cny(store.list_requests(department=doc.department), doc.department, rec.id)
    # site budgets (rule 7): what every department at or below each site already holds is taken off
    held_by_dept: dict[str, float] = {}
    if catalog.sites:
        for r in store.list_requests():
            if r.id != rec.id and r.state in lc.HOLDING_STATES:
                held_by_dept[r.department] = held_by_dept.get(r.department, 0.0) + sum(
                    p.monthly_cost_cny for p in r.placements)
    plan = place(lc.catalog_for_review(with_committed(catalog, held_by_dept), doc, committed), day, usage=usage)
    unplaced = [u for u in plan.unplaced if u.department == doc.department]
    if unplaced:
        raise NotPlaceable("request cannot be placed: " + "; ".join(
            f"{u.request} ({u.role}): {', '.join(u.reasons)}" for u in unplaced))
    rows = lc.placement_rows(plan, doc.department)
    caps = []
    for prov, zone in sorted({(r.provider, r.zone) for r in rows}):
        z = catalog.provider(prov).zone(zone)
        caps.append(CapacityRow(prov, zone, z.capacity("vcpu"), z.capacity("ram_gb"), z.capacity("disk_gb")))
    for c in catalog.department(doc.department).contracts:
        cost = sum(r.monthly_cost_cny for r in rows if r.contract == c.id)
        if cost:
            notes.append(f"contract {c.id} ({c.provider}, {c.role}): +{cost:,.2f} CNY/month on top of "
                         f"{committed.get(c.id, 0.0):,.2f} already held, ceiling {c.ceiling_cny_per_month:,.0f}")
    rec = store.review(request_id, who.actor, rows, caps, notes)
    _notify(deps, "reviewed", rec, "approver")
    return rec, notes


def approve(deps: Deps, who: Identity, request_id: int, reason: str) -> Any:
    """An approver approves; above the threshold the first of two approvals; the last one reserves
    capacity and contract ceiling inside one transaction, and records the plan it approved."""
    rec = _load(deps, who, request_id, "request.approve")
    step = lc.approval_step(rec.state, _cost(rec), deps.catalog.approval)
    lc.transition(rec.state, step, who.actor, reason)
    _chain(deps, who, rec, step)
    if step == "approve-first":
        rec = deps.store.approve_first(request_id, who.actor, reason)
        _notify(deps, "first-approved", rec, "approver")
        return rec
    try:
        ceilings = {c.id: c.ceiling_cny_per_month for c in deps.catalog.department(rec.department).contracts}
    except KeyError:
        raise NotFound(f"department {rec.department!r} is no longer in the catalog") from None
    pending = approved_plan(deps.store, deps.catalog, request_id, deps.today())  # refused before approving
    rec = deps.store.approve(request_id, who.actor, reason, ceilings_cny=ceilings)
    pending.record(by=who.actor)               # the plan it approved: what tenant apply / stack up build
    _notify(deps, "approved", rec, "engineer")
    return rec


def reject(deps: Deps, who: Identity, request_id: int, reason: str) -> Any:
    rec = _load(deps, who, request_id, "request.reject")
    if "department-head" in who.roles and not who.roles & {"reviewer", "approver"} and rec.state != lc.SUBMITTED:
        raise lc.TransitionRefused(f"reject request {request_id}: the department head rejects only before "
                                   "endorsing (it is " + rec.state + ")")
    return deps.store.reject(request_id, who.actor, reason)


def apply_request(deps: Deps, rec, record, catalog, plan, engine: str) -> dict:
    """Apply the department's tenant of the recorded plan ``record`` (resolved: ``catalog``, ``plan``)
    on every operator the request is placed on; returns what was done per operator."""
    from yunshang.plans import plan_specs

    operators = sorted({p.provider for p in rec.placements})
    specs = plan_specs(record, catalog, plan, rec.department, operators)
    if engine == "pulumi":
        try:   # the Automation API front; the engine where `stack up` finds it (make pulumi's links, then PATH)
            from stacks.automation import require_pulumi, up_stack  # type: ignore
        except ImportError:
            raise ToolMissing("configure --engine pulumi needs stacks/automation.py (up_stack), "
                              "not present in this checkout") from None
        require_pulumi()
        return {s.operator: up_stack(catalog, plan, s, deps.clouds_file, on_output=deps.say) for s in specs}
    if not deps.clouds_file:
        raise InputInvalid([])  # pragma: no cover - adapters check first
    from yunshang.openstack import tenant as engine_mod

    return {s.operator: engine_mod.apply_spec(s, deps.clouds_file, say=deps.say) for s in specs}


def configure_plan(deps: Deps, rec, day: dt.date, plan_id: int | None = None):
    """The recorded plan ``configure`` builds for request ``rec``: ``plan_id``, else the latest plan
    covering its department (the one `stack up DEPT` and `tenant apply DEPT` build by default),
    checked like theirs (content hash, contracts valid on ``day``, catalog still as the plan needs
    it) and, in addition, holding every approved placement of the department as approved.
    Returns (record, catalog, Plan, notes); PlanInvalid / NoPlan (exit 2) before any cloud is touched."""
    from yunshang.plans import NoPlan, PlanInvalid, approval_plan, plan_holds_records, resolve_plan

    record, catalog, plan, notes = resolve_plan(deps.store, deps.catalog, rec.department, plan_id, day)
    holding = [r for r in deps.store.list_requests(department=rec.department)
               if r.id == rec.id or r.state in lc.HOLDING_STATES]
    problems = plan_holds_records(record, rec.department, holding)
    if problems:
        try:
            mine = approval_plan(deps.store, rec.id)
            if mine.id != record.id:
                problems.append(f"the plan approving request {rec.id} recorded is plan {mine.id} (--plan {mine.id})")
        except NoPlan:
            pass
        raise PlanInvalid(record.id, problems)
    return record, catalog, plan, notes


def configure(deps: Deps, who: Identity, request_id: int, engine: str = "sdk", day: dt.date | None = None,
              plan_id: int | None = None) -> Any:
    """Build the tenant(s) of approved request ``request_id`` from the recorded plan (``plan_id``,
    default the latest covering its department), then record it with that plan's id and hash."""
    rec = _load(deps, who, request_id, "request.configure")
    lc.transition(rec.state, "configure", who.actor)        # refuse early, before touching a cloud
    record, catalog, plan, notes = configure_plan(deps, rec, day or deps.today(), plan_id)
    for n in notes:
        deps.say(f"note: {n}")
    details = apply_request(deps, rec, record, catalog, plan, engine)
    return deps.store.configure(request_id, who.actor, engine, details,
                                plan={"id": record.id, "content_hash": record.content_hash})


def publish(deps: Deps, who: Identity, request_id: int, with_catalog_probes: bool = False) -> Any:
    rec = _load(deps, who, request_id, "request.publish")
    probes = list(rec.document.get("probes", []))
    if with_catalog_probes:
        names = {p["name"] for p in probes}
        try:
            dept = deps.catalog.department(rec.department)
        except KeyError:
            raise NotFound(f"department {rec.department!r} is not in the catalog") from None
        probes += [{"name": p.name, "kind": p.kind, "target": p.target, "contract": p.contract}
                   for p in dept.probes if p.name in {pl.request_name for pl in rec.placements} | names]
    return deps.store.publish(request_id, who.actor, probes)


def monitor(deps: Deps, who: Identity, request_id: int, prometheus_url: str, within_days: int = 1) -> tuple[Any, list]:
    from yunshang.promread import PrometheusClient

    rec = _load(deps, who, request_id, "request.monitor")
    lc.transition(rec.state, "monitor", who.actor)
    log = deps.store.audit_log(subject=f"request:{request_id}")
    probes: list[dict[str, Any]] = next((e.after.get("probes", []) for e in reversed(log) if e.action == "publish"), [])
    if not probes:
        raise YunshangError(f"request {request_id} was published without probe targets: nothing to monitor")
    client = PrometheusClient(prometheus_url)
    seen: list[str] = []
    missing: list[str] = []
    for p in probes:
        q = (f'last_over_time(yunshang_probe_success{{department="{rec.department}",probe="{p["name"]}"}}'
             f'[{within_days}d])')
        (seen if client.query(q) else missing).append(p["name"])
    if missing:
        raise YunshangError(f"request {request_id}: no probe data in {prometheus_url} within {within_days} day(s) "
                            f"for {', '.join(missing)} (is the exporter probing them?)")
    return deps.store.monitor(request_id, who.actor), seen


def reclaim_plan(deps: Deps, who: Identity | None, day: dt.date, idle: dict, idle_days: int,
                 mark: bool = False) -> list:
    """Propose reclaims (contract ended, idle); with ``mark`` (an engineer) record them as reclaim-planned.
    A department's people see only their department's candidates."""
    me = authorize(who, "request.read")
    live = [r for r in deps.store.list_requests(department=sees_department(me))
            if r.state in (lc.CONFIGURED, lc.PUBLISHED, lc.MONITORED)]
    candidates = lc.reclaim_candidates(live, deps.catalog, day, idle, idle_days)
    if mark:
        authorize(me, "request.plan-reclaim")
        for c in candidates:
            deps.store.plan_reclaim(c.request_id, me.actor, "; ".join(c.reasons), evidence=c.evidence)
    return candidates


def plan_reclaim(deps: Deps, who: Identity, request_id: int, reason: str) -> Any:
    _load(deps, who, request_id, "request.plan-reclaim")
    return deps.store.plan_reclaim(request_id, who.actor, reason)


def reclaim(deps: Deps, who: Identity, request_id: int, reason: str) -> Any:
    _load(deps, who, request_id, "request.reclaim")
    return deps.store.reclaim(request_id, who.actor, reason)


def keep(deps: Deps, who: Identity, request_id: int, reason: str) -> Any:
    _load(deps, who, request_id, "request.keep")
    return deps.store.keep(request_id, who.actor, reason)


# --------------------------------------------------------------------------- reads
def list_requests(deps: Deps, who: Identity, state: str | None = None, department: str | None = None,
                  limit: int | None = None, before_id: int | None = None) -> list:
    """A department role sees only its department's requests; a center role every department's.
    ``limit``/``before_id``: one page, the newest first cut (ids stay ascending within it)."""
    authorize(who, "request.read")
    only = sees_department(who)
    if only is not None:
        if department and department != only:
            return []
        department = only
    return deps.store.list_requests(state=state, department=department, limit=limit, before_id=before_id)


def show(deps: Deps, who: Identity, request_id: int) -> Any:
    return _load(deps, who, request_id, "request.read")


def waiting_for(deps: Deps, who: Identity) -> list:
    """The requests waiting on ``who`` (their queue): endorse / review / approve."""
    want = []
    if "department-head" in who.roles:
        want.append(lc.SUBMITTED)
    if "reviewer" in who.roles:
        want += [lc.ENDORSED] if deps.catalog.approval.department_head_endorses else [lc.SUBMITTED]
    if "approver" in who.roles:
        want += [lc.REVIEWED, lc.FIRST_APPROVED]
    return [r for r in list_requests(deps, who) if r.state in want]


def audit_log(deps: Deps, who: Identity, request_id: int | None = None, verify: bool = False) -> tuple[list, tuple]:
    authorize(who, "audit.read")
    entries = deps.store.audit_log(subject=f"request:{request_id}" if request_id else None)
    return entries, deps.store.verify_audit() if verify else (True, None, len(entries))


def capacity(deps: Deps, who: Identity) -> list[dict]:
    authorize(who, "capacity.read")
    return deps.store.capacity()


def offer(deps: Deps, who: Identity, department: str) -> dict:
    """What ``department`` may order: templates with sizes and monthly prices per operator, and each
    contract with its ceiling, what its holding requests commit and what is left."""
    authorize(who, "catalog.read", department, hide_existence=True)
    cat = deps.catalog
    try:
        dept = cat.department(department)
    except KeyError:
        raise NotFound(f"no department {department!r}") from None
    committed = lc.committed_cost_cny(deps.store.list_requests(department=department), department)
    day = deps.today()
    providers = {c.provider for c in dept.contracts}
    templates = []
    for t in cat.templates.values():
        sizes = []
        for name, s in t.sizes.items():
            prices = {}
            for p in cat.providers:
                if p.name in providers:
                    pr = p.prices
                    prices[p.name] = round(s.vcpu * pr.vcpu + s.ram_gb * pr.ram_gb + s.disk_gb * pr.disk_gb
                                           + t.floating_ips * pr.floating_ip, 2)
            sizes.append({"name": name, "vcpu": s.vcpu, "ram_gb": s.ram_gb, "disk_gb": s.disk_gb,
                          "monthly_cny_per_instance": prices})
        templates.append({"name": t.name, "floating_ips": t.floating_ips, "sizes": sizes})
    contracts = [{"id": c.id, "provider": c.provider, "role": c.role, "start": c.start.isoformat(),
                  "end": c.end.isoformat(), "valid_today": c.valid_on(day),
                  "ceiling_cny_per_month": c.ceiling_cny_per_month,
                  "committed_cny_per_month": round(committed.get(c.id, 0.0), 2),
                  "left_cny_per_month": round(max(0.0, c.ceiling_cny_per_month - committed.get(c.id, 0.0)), 2)}
                 for c in dept.contracts]
    return {"department": dept.name, "display_name": dept.display_name, "mlps_level": dept.mlps_level,
            "templates": templates, "contracts": contracts}


def record_dict(r) -> dict:
    """A request record as JSON-able data (the CLI's -o json and the API's body)."""
    return {"id": r.id, "department": r.department, "title": r.title, "state": r.state,
            "submitted_by": r.submitted_by, "source_file": r.source_file,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            "engine": r.engine, "configured_at": r.configured_at and r.configured_at.isoformat(),
            "published_at": r.published_at and r.published_at.isoformat(),
            "reclaimed_at": r.reclaimed_at and r.reclaimed_at.isoformat(),
            "monthly_cost_cny": _cost(r),
            "placements": [dataclasses.asdict(p) for p in r.placements], "document": r.document}


def audit_dict(e) -> dict:
    return {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "subject": e.subject,
            "before": e.before, "after": e.after, "reason": e.reason, "hash": e.hash}
