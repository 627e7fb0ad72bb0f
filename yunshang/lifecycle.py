"""The capacity lifecycle as a pure state machine, and the request document.

A department's request goes::

    submitted -> endorsed (the department head) -> reviewed -> approved | rejected
    reviewed -> first-approved -> approved  (above the catalog's cost threshold: two approvers)
    approved -> configured -> published -> monitored
    configured | published | monitored -> reclaim-planned -> reclaimed
    reclaim-planned -> published            (``keep``: the plan was wrong)

Every transition names an actor; approve, reject, plan-reclaim, keep and
reclaim also need a reason. ``transition()`` decides; the store records it
(with the audit entry) in the same database transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from yunshang import model as _model
from yunshang.errors import Problem, YunshangError
from yunshang.model import Request

SUBMITTED = "submitted"
ENDORSED = "endorsed"
REVIEWED = "reviewed"
FIRST_APPROVED = "first-approved"
APPROVED = "approved"
REJECTED = "rejected"
CONFIGURED = "configured"
PUBLISHED = "published"
MONITORED = "monitored"
RECLAIM_PLANNED = "reclaim-planned"
RECLAIMED = "reclaimed"

STATES = (SUBMITTED, ENDORSED, REVIEWED, FIRST_APPROVED, APPROVED, REJECTED, CONFIGURED, PUBLISHED, MONITORED,
          RECLAIM_PLANNED, RECLAIMED)

# States in which a request holds (reserved or real) capacity.
HOLDING_STATES = frozenset({APPROVED, CONFIGURED, PUBLISHED, MONITORED, RECLAIM_PLANNED})
# States in which resources exist on a cloud (billable).
BILLABLE_STATES = frozenset({CONFIGURED, PUBLISHED, MONITORED, RECLAIM_PLANNED})


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[str]
    target: str
    reason_required: bool


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("submit", frozenset({""}), SUBMITTED, False),
    Action("endorse", frozenset({SUBMITTED}), ENDORSED, False),
    Action("review", frozenset({SUBMITTED, ENDORSED, REVIEWED}), REVIEWED, False),
    Action("approve-first", frozenset({REVIEWED}), FIRST_APPROVED, True),
    Action("approve", frozenset({REVIEWED, FIRST_APPROVED}), APPROVED, True),
    Action("reject", frozenset({SUBMITTED, ENDORSED, REVIEWED, FIRST_APPROVED}), REJECTED, True),
    Action("configure", frozenset({APPROVED, CONFIGURED}), CONFIGURED, False),
    Action("publish", frozenset({CONFIGURED}), PUBLISHED, False),
    Action("monitor", frozenset({PUBLISHED}), MONITORED, False),
    Action("plan-reclaim", frozenset({CONFIGURED, PUBLISHED, MONITORED}), RECLAIM_PLANNED, True),
    Action("keep", frozenset({RECLAIM_PLANNED}), PUBLISHED, True),
    Action("reclaim", frozenset({RECLAIM_PLANNED}), RECLAIMED, True),
)}


class TransitionRefused(YunshangError):
    """A lifecycle step that is not allowed from the request's current state (or lacks who/why)."""

    exit_code = 3


class CapacityExhausted(YunshangError):
    """Approval refused: the reservation would exceed the recorded capacity of a zone."""

    exit_code = 3


def allowed_actions(state: str) -> tuple[str, ...]:
    """The actions possible from ``state`` ("" = not yet submitted), in lifecycle order."""
    return tuple(a.name for a in ACTIONS.values() if state in a.sources)


def transition(state: str, action: str, actor: str, reason: str = "") -> str:
    """The state after ``action`` from ``state``; raises TransitionRefused when not allowed."""
    a = ACTIONS.get(action)
    if a is None:
        raise TransitionRefused(f"unknown lifecycle action {action!r}; known: {', '.join(ACTIONS)}")
    if not actor or not actor.strip():
        raise TransitionRefused(f"{action}: who acts must be named (--by NAME)")
    if a.reason_required and (not reason or not reason.strip()):
        raise TransitionRefused(f"{action}: a reason is required (--reason TEXT)")
    if state not in a.sources:
        shown = state or "(new)"
        possible = ", ".join(allowed_actions(state)) or "none (final state)"
        raise TransitionRefused(f"cannot {action} a request that is {shown}; possible now: {possible}")
    return a.target


# --------------------------------------------------------------------------- the approval chain (pure)
def chain_refusal(state: str, action: str, actor: str, history, monthly_cost_cny: float, policy) -> str | None:
    """Why the approval chain / separation of duties refuses ``actor`` doing ``action`` now (None: allowed).

    ``history``: the request's audit entries (``.actor``, ``.action``); ``policy``: model.ApprovalPolicy.
    * review needs the department head's endorsement first (when the policy asks for it);
    * nobody approves what they submitted, endorsed or reviewed;
    * above ``two_approvers_above_cny_per_month`` two different approvers.
    """
    did = {(e.action, e.actor) for e in history}
    if action == "review" and state == SUBMITTED and policy.department_head_endorses:
        return "the department head must endorse the request before it is reviewed"
    if action in ("approve", "approve-first"):
        for step in ("submit", "endorse", "review"):
            if (step, actor) in did:
                return f"separation of duties: the approver may not be the one who did '{step}' on this request"
        if state == FIRST_APPROVED and ("approve-first", actor) in did:
            return "separation of duties: the second approval must come from a different approver"
    if action == "review" and ("submit", actor) in did:
        return "separation of duties: the reviewer may not be the one who submitted the request"
    return None


def approval_step(state: str, monthly_cost_cny: float, policy) -> str:
    """Which approve action applies: ``approve-first`` when two approvers are needed and none approved yet."""
    if state == REVIEWED and monthly_cost_cny > policy.two_approvers_above_cny_per_month:
        return "approve-first"
    return "approve"


# --------------------------------------------------------------------------- the request document
RequestDocument = _model.RequestDocument


def parse_request_document(data: Any, file: str, default_mlps: int | None = None, catalog=None) -> RequestDocument:
    """Validate a parsed request document (every problem at once, InputInvalid).

    The one schema is ``yunshang.catalog.request_document``; an entry's ``mlps_level`` defaults
    to its department's level, taken from ``catalog`` (or given as ``default_mlps``).
    """
    from yunshang.catalog import request_document

    def level(name: str) -> int | None:
        if catalog is not None:
            try:
                return catalog.department(name).mlps_level
            except KeyError:
                return None
        return default_mlps
    return request_document(data, file, level)


def document_to_dict(doc: RequestDocument) -> dict:
    """The JSON-able form stored in the database (round-trips through parse_request_document)."""
    return {
        "department": doc.department,
        "title": doc.title,
        "contact": doc.contact,
        "requests": [
            {"name": r.name, "template": r.template, "size": r.size, "count": r.count,
             "mlps_level": r.mlps_level, "ha": r.ha, "dr": r.dr, "secret": r.secret}
            for r in doc.requests
        ],
        "probes": [{"name": p.name, "kind": p.kind, "target": p.target, **({"contract": p.contract} if p.contract else {})}
                   for p in doc.probes],
    }


def validate_against_catalog(doc: RequestDocument, catalog, file: str = "request") -> list[Problem]:
    """Problems of a request against the catalog: department, templates, sizes, MLPS level."""
    problems: list[Problem] = []
    try:
        dept = catalog.department(doc.department)
    except KeyError:
        known = ", ".join(d.name for d in catalog.departments)
        return [Problem(file, "department", f"unknown department {doc.department!r}; known: {known}")]
    for i, r in enumerate(doc.requests):
        where = f"requests[{i}]"
        t = catalog.templates.get(r.template)
        if t is None:
            problems.append(Problem(file, f"{where}.template", f"unknown template {r.template!r}; known: "
                                    + ", ".join(sorted(catalog.templates))))
        elif r.size not in t.sizes:
            problems.append(Problem(file, f"{where}.size", f"template {r.template} has no size {r.size!r}; "
                                    f"sizes: {', '.join(t.sizes)}"))
        if r.mlps_level < dept.mlps_level:
            problems.append(Problem(file, f"{where}.mlps_level",
                                    f"{r.mlps_level} is below the department's level {dept.mlps_level}"))
    return problems


# --------------------------------------------------------------------------- review helpers (pure)
def catalog_for_review(catalog, doc: RequestDocument, committed_cny: Mapping[str, float] | None = None):
    """The catalog narrowed to the requesting department, its requests replaced by the document's.

    ``committed_cny[contract]`` = monthly cost already held under that contract by the department's
    other approved/configured requests: it is taken off the contract's ceiling, so the placement's
    ceiling check sees what is really left.
    """
    import dataclasses

    committed_cny = committed_cny or {}
    dept = catalog.department(doc.department)
    contracts = tuple(dataclasses.replace(c, ceiling_cny_per_month=max(0.0, c.ceiling_cny_per_month
                                                                       - committed_cny.get(c.id, 0.0)))
                      for c in dept.contracts)
    dept = dataclasses.replace(dept, requests=doc.requests, contracts=contracts)
    return dataclasses.replace(catalog, departments=(dept,))


def committed_cost_cny(records, department: str, exclude_id: int | None = None) -> dict[str, float]:
    """Monthly cost per contract of the department's requests that hold capacity (approved or later)."""
    out: dict[str, float] = {}
    for r in records:
        if r.department != department or r.id == exclude_id or r.state not in HOLDING_STATES:
            continue
        for p in r.placements:
            out[p.contract] = out.get(p.contract, 0.0) + p.monthly_cost_cny
    return out


def placement_rows(plan, department: str) -> list:
    """Split each Placement of ``department`` into per-zone rows (what approve reserves, what bills meter)."""
    from yunshang.store import PlacementRow

    rows = []
    for p in plan.placements:
        if p.department != department:
            continue
        total = sum(n for _, n in p.zones) or 1
        for zone, n in p.zones:
            share = n / total
            rows.append(PlacementRow(p.request, p.role, p.provider, p.contract, zone, n,
                                     p.vcpu * share, p.ram_gb * share, p.disk_gb * share,
                                     p.floating_ips * share, round(p.monthly_cost_cny * share, 2)))
    return rows


def reserved_usage(capacity_rows: list[dict]):
    """Store capacity/reservation view -> model.Usage per zone (what approved requests already hold)."""
    from yunshang.model import Usage

    return tuple(Usage(c["provider"], c["zone"], c["reserved_vcpu"], c["reserved_ram_gb"], c["reserved_disk_gb"])
                 for c in capacity_rows)


def merge_usage(*usages) -> tuple:
    """Per zone, the larger of several usage views (recorded reservations vs live Placement)."""
    from yunshang.model import Usage

    acc: dict[tuple[str, str], list[float]] = {}
    for group in usages:
        for u in group:
            a = acc.setdefault((u.provider, u.zone), [0.0, 0.0, 0.0])
            a[0], a[1], a[2] = max(a[0], u.vcpu), max(a[1], u.ram_gb), max(a[2], u.disk_gb)
    return tuple(Usage(p, z, *v) for (p, z), v in sorted(acc.items()))


# --------------------------------------------------------------------------- reclaim (pure)
@dataclass(frozen=True)
class ReclaimCandidate:
    request_id: int
    department: str
    state: str
    reasons: tuple[str, ...]
    evidence: dict


def reclaim_candidates(records, catalog, day, idle: Mapping[tuple[str, str], float] | None = None,
                       idle_days: int = 0) -> list[ReclaimCandidate]:
    """Requests holding capacity that should be reclaimed, each with its reasons and evidence.

    * a contract its placement uses has ended before ``day`` (or left the catalog);
    * ``idle[(department, operator)]`` = days the exporter saw no server in use there, >= idle_days.
    Only proposes: the store's plan-reclaim step records it, a person confirms.
    """
    idle = idle or {}
    out = []
    for r in records:
        if r.state not in (CONFIGURED, PUBLISHED, MONITORED):
            continue
        reasons: list[str] = []
        evidence: dict[str, dict] = {}
        try:
            dept = catalog.department(r.department)
        except KeyError:
            dept = None
        for cid in sorted({p.contract for p in r.placements}):
            try:
                c = dept.contract(cid) if dept else None
            except KeyError:
                c = None
            if c is None:
                reasons.append(f"contract {cid} is no longer in the catalog")
                evidence.setdefault("contracts", {})[cid] = "missing"
            elif c.end < day:
                reasons.append(f"contract {cid} with {c.provider} ended on {c.end.isoformat()}")
                evidence.setdefault("contracts", {})[cid] = f"ended {c.end.isoformat()}"
        if idle_days:
            for op in sorted({p.provider for p in r.placements}):
                days = idle.get((r.department, op))
                if days is not None and days >= idle_days:
                    reasons.append(f"no server in use on {op} for {days:g} days (>= {idle_days})")
                    evidence.setdefault("idle_days", {})[op] = days
        if reasons:
            out.append(ReclaimCandidate(r.id, r.department, r.state, tuple(reasons), evidence))
    return out


def plan_from_records(records, day, department: str):
    """A Plan of the department's placements in the given records (what its tenants must hold).

    Used by ``configure``: a department's tenant on an operator carries every request it
    holds there, so applying one request never drops another's servers.
    """
    from yunshang.model import Placement, Plan

    groups: dict[tuple, list] = {}
    for r in records:
        if r.department != department:
            continue
        for p in r.placements:
            groups.setdefault((p.request_name, p.role, p.provider, p.contract), []).append(p)
    placements = []
    for (name, role, prov, contract), rows in sorted(groups.items()):
        zones: dict[str, int] = {}
        for x in rows:
            zones[x.zone] = zones.get(x.zone, 0) + x.instances
        placements.append(Placement(
            department=department, request=name, role=role, provider=prov, contract=contract,
            zones=tuple(sorted(zones.items())), vcpu=round(sum(x.vcpu for x in rows)),
            ram_gb=round(sum(x.ram_gb for x in rows)), disk_gb=round(sum(x.disk_gb for x in rows)),
            floating_ips=round(sum(x.floating_ips for x in rows)),
            monthly_cost_cny=round(sum(x.monthly_cost_cny for x in rows), 2)))
    return Plan(date=day, placements=tuple(placements), unplaced=(), utilization=(),
                total_monthly_cost_cny=round(sum(p.monthly_cost_cny for p in placements), 2))


def catalog_with_records(catalog, department: str, records):
    """The catalog narrowed to ``department`` whose requests are those of the given records."""
    import dataclasses

    reqs: dict[str, Request] = {}
    for r in records:
        if r.department == department:
            for q in parse_request_document(r.document, f"request {r.id}").requests:
                reqs[q.name] = q
    dept = dataclasses.replace(catalog.department(department), requests=tuple(reqs[k] for k in sorted(reqs)))
    return dataclasses.replace(catalog, departments=(dept,))
