"""The capacity lifecycle as a pure state machine, and the request document.

A department's request goes::

    submitted -> reviewed -> approved | rejected
    approved -> configured -> published -> monitored
    configured | published | monitored -> reclaim-planned -> reclaimed
    reclaim-planned -> published            (``keep``: the plan was wrong)

Every transition names an actor; approve, reject, plan-reclaim, keep and
reclaim also need a reason. ``transition()`` decides; the store records it
(with the audit entry) in the same database transaction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from yunshang.errors import InputInvalid, Problem, YunshangError
from yunshang.model import Probe, Request

SUBMITTED = "submitted"
REVIEWED = "reviewed"
APPROVED = "approved"
REJECTED = "rejected"
CONFIGURED = "configured"
PUBLISHED = "published"
MONITORED = "monitored"
RECLAIM_PLANNED = "reclaim-planned"
RECLAIMED = "reclaimed"

STATES = (SUBMITTED, REVIEWED, APPROVED, REJECTED, CONFIGURED, PUBLISHED, MONITORED, RECLAIM_PLANNED, RECLAIMED)

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
    Action("review", frozenset({SUBMITTED, REVIEWED}), REVIEWED, False),
    Action("approve", frozenset({REVIEWED}), APPROVED, True),
    Action("reject", frozenset({SUBMITTED, REVIEWED}), REJECTED, True),
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


# --------------------------------------------------------------------------- the request document
@dataclass(frozen=True)
class RequestDocument:
    """A department's templated capacity request (the file given to ``request submit``)."""

    department: str
    title: str
    requests: tuple[Request, ...]
    probes: tuple[Probe, ...] = ()
    contact: str = ""


_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def parse_request_document(data: Any, file: str, default_mlps: int | None = None) -> RequestDocument:
    """Validate a parsed YAML request document; every problem reported at once (InputInvalid)."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise InputInvalid([Problem(file, "", "expected a mapping with department and requests")])
    dept = data.get("department")
    if not isinstance(dept, str) or not _NAME.match(dept):
        problems.append(Problem(file, "department", "expected a department name ([a-z0-9-]+)"))
    title = data.get("title", "")
    if not isinstance(title, str):
        problems.append(Problem(file, "title", "expected text"))
        title = ""
    entries = data.get("requests")
    reqs: list[Request] = []
    if not isinstance(entries, list) or not entries:
        problems.append(Problem(file, "requests", "expected a non-empty list of request entries"))
        entries = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        where = f"requests[{i}]"
        if not isinstance(e, Mapping):
            problems.append(Problem(file, where, "expected a mapping (name, template, size, count, ...)"))
            continue
        unknown = set(e) - {"name", "template", "size", "count", "mlps_level", "ha", "dr", "secret"}
        for u in sorted(unknown):
            problems.append(Problem(file, f"{where}.{u}", "unknown field"))
        name, template, size, count = e.get("name"), e.get("template"), e.get("size"), e.get("count", 1)
        ok = True
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(Problem(file, f"{where}.name", "expected a name ([a-z0-9-]+)"))
            ok = False
        elif name in seen:
            problems.append(Problem(file, f"{where}.name", f"duplicate request name {name!r}"))
            ok = False
        else:
            seen.add(name)
        for fld, val in (("template", template), ("size", size)):
            if not isinstance(val, str) or not val:
                problems.append(Problem(file, f"{where}.{fld}", "expected a name"))
                ok = False
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            problems.append(Problem(file, f"{where}.count", "expected an integer >= 1"))
            ok = False
        level = e.get("mlps_level", default_mlps if default_mlps is not None else 2)
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 4:
            problems.append(Problem(file, f"{where}.mlps_level", "expected an integer 1..4"))
            ok = False
        flags = {}
        for fld in ("ha", "dr", "secret"):
            v = e.get(fld, False)
            if not isinstance(v, bool):
                problems.append(Problem(file, f"{where}.{fld}", "expected true or false"))
                ok = False
            flags[fld] = v
        if ok:
            reqs.append(Request(name=name, template=template, size=size, count=count, mlps_level=level, **flags))
    probes: list[Probe] = []
    for i, p in enumerate(data.get("probes") or []):
        where = f"probes[{i}]"
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str) or not isinstance(p.get("target"), str):
            problems.append(Problem(file, where, "expected {name, kind: http|tcp, target}"))
            continue
        kind = p.get("kind", "http")
        if kind not in ("http", "tcp"):
            problems.append(Problem(file, f"{where}.kind", "expected http or tcp"))
            continue
        probes.append(Probe(name=p["name"], kind=kind, target=p["target"], contract=str(p.get("contract", ""))))
    if problems:
        raise InputInvalid(problems)
    return RequestDocument(department=dept, title=title, requests=tuple(reqs), probes=tuple(probes),
                           contact=str(data.get("contact", "")))


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
        "probes": [{"name": p.name, "kind": p.kind, "target": p.target, "contract": p.contract} for p in doc.probes],
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
