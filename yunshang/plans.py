"""The approved plan as an artifact: serialised, hashed, checked before every apply. Pure.

A plan is recorded (``yunshang plan --save``, ``request approve``) as a canonical JSON document
with a content hash and the digest of the catalog it was made from; ``stack preview|up|destroy``
and ``tenant apply|verify`` consume a recorded plan (``--plan ID``), never re-place. The store
only persists what these functions produce (``yunshang.store``).

The document (format 1)::

    {"format": 1, "date": "2026-12-01",
     "requests_from": "catalog" | "records",
     "placements": [{"department", "request", "role", "provider", "contract",
                     "zones": [[zone, n], ...], "vcpu", "ram_gb", "disk_gb", "floating_ips",
                     "monthly_cost_cny", "sites": [...]}, ...],
     "requests": {"<department>": [{"name", "template", "size", "count", "mlps_level",
                                    "ha", "dr", "secret"}, ...]},
     "sizes": {"<template>/<size>": {"vcpu", "ram_gb", "disk_gb"}}}

``requests`` and ``sizes`` are what the placements were computed from. ``requests_from``
says where an apply takes the request definitions: ``catalog`` (``plan --save``: the catalog's
own requests, which must still be the ones recorded) or ``records`` (``request approve``: the
approved request documents, recorded in the plan; the catalog has no entry for them).

``check_plan`` refuses (``PlanInvalid``, naming what changed) a plan whose contracts are no
longer valid on the apply date, or whose catalog changed in a way that breaks it: a department,
operator, zone, contract, request, template or size it uses is gone or different.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from yunshang.errors import NotFound, YunshangError
from yunshang.model import Catalog, Placement, Plan, Request

FORMAT = 1
FROM_CATALOG, FROM_RECORDS = "catalog", "records"
_REQUEST_FIELDS = ("name", "template", "size", "count", "mlps_level", "ha", "dr", "secret")


class PlanInvalid(YunshangError):
    """A recorded plan cannot be applied: what changed since it was made."""

    exit_code = 2

    def __init__(self, plan_id: int | None, problems: Iterable[str]):
        self.plan_id = plan_id
        self.problems = tuple(problems)
        what = f"plan {plan_id}" if plan_id is not None else "the plan"
        super().__init__(f"{what} cannot be applied: " + "; ".join(self.problems)
                         + "; make a new plan: yunshang plan --save (or review and approve the request again)")


class NoPlan(NotFound):
    """No recorded plan covers the department."""


@dataclass(frozen=True)
class PlanRecord:
    """A plan as the lifecycle store keeps it."""

    id: int
    content_hash: str
    created_at: dt.datetime
    created_by: str
    source: str                  # "plan --save" | "request approve <id>"
    plan_date: dt.date
    catalog_digest: str
    departments: tuple[str, ...]
    document: Mapping[str, Any]

    def summary(self) -> dict:
        return {"id": self.id, "content_hash": self.content_hash, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by, "source": self.source, "date": self.plan_date.isoformat(),
                "catalog_digest": self.catalog_digest, "departments": list(self.departments)}


# --------------------------------------------------------------------------- canonical forms
def canonical_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the document's canonical JSON."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def _plain(v: Any, skip: frozenset[str]) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name), skip) for f in dataclasses.fields(v) if f.name not in skip}
    if isinstance(v, Mapping):
        return {str(k): _plain(x, skip) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple, frozenset, set)):
        items = [_plain(x, skip) for x in v]
        return sorted(items, key=canonical_json) if isinstance(v, (set, frozenset)) else items
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def catalog_digest(catalog: Catalog) -> str:
    """sha256 over the catalog's content (where its files live and their raw text aside)."""
    return hashlib.sha256(canonical_json(_plain(catalog, frozenset({"root", "file", "source"}))).encode()).hexdigest()


def _request_dict(r: Request) -> dict:
    return {k: getattr(r, k) for k in _REQUEST_FIELDS}


def plan_document(catalog: Catalog, plan: Plan, *, departments: Iterable[str] | None = None,
                  requests_from: str = FROM_CATALOG) -> dict:
    """The canonical document of ``plan`` (only ``departments``' placements when given)."""
    keep = set(departments) if departments is not None else None
    placements = [p for p in plan.placements if keep is None or p.department in keep]
    reqs: dict[str, list[dict]] = {}
    sizes: dict[str, dict] = {}
    for dept in sorted({p.department for p in placements}):
        by_name = {r.name: r for r in catalog.department(dept).requests}
        placed = sorted({p.request for p in placements if p.department == dept})
        missing = [n for n in placed if n not in by_name]
        if missing:
            raise NotFound(f"plan places {dept}/{', '.join(missing)}, which the catalog does not have")
        reqs[dept] = [_request_dict(by_name[n]) for n in placed]
        for n in placed:
            r = by_name[n]
            tpl = catalog.templates.get(r.template)
            if tpl is not None and r.size in tpl.sizes:
                s = tpl.sizes[r.size]
                sizes[f"{r.template}/{r.size}"] = {"vcpu": s.vcpu, "ram_gb": s.ram_gb, "disk_gb": s.disk_gb}
    return {
        "format": FORMAT, "date": plan.date.isoformat(), "requests_from": requests_from,
        "placements": [{"department": p.department, "request": p.request, "role": p.role, "provider": p.provider,
                        "contract": p.contract, "zones": [[z, n] for z, n in p.zones], "vcpu": p.vcpu,
                        "ram_gb": p.ram_gb, "disk_gb": p.disk_gb, "floating_ips": p.floating_ips,
                        "monthly_cost_cny": p.monthly_cost_cny, "sites": list(p.sites)}
                       for p in sorted(placements, key=lambda p: (p.department, p.request, p.role))],
        "requests": reqs, "sizes": dict(sorted(sizes.items())),
    }


def plan_departments(document: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted({p["department"] for p in document["placements"]}))


def plan_from_document(document: Mapping[str, Any]) -> Plan:
    """The core's Plan back from a document (unplaced/utilisation are not part of an approved plan)."""
    if document.get("format") != FORMAT:
        raise PlanInvalid(None, [f"plan document format {document.get('format')!r}, expected {FORMAT}"])
    placements = tuple(Placement(
        department=p["department"], request=p["request"], role=p["role"], provider=p["provider"],
        contract=p["contract"], zones=tuple((z, int(n)) for z, n in p["zones"]), vcpu=p["vcpu"], ram_gb=p["ram_gb"],
        disk_gb=p["disk_gb"], floating_ips=p["floating_ips"], monthly_cost_cny=p["monthly_cost_cny"],
        sites=tuple(p.get("sites", ()))) for p in document["placements"])
    return Plan(date=dt.date.fromisoformat(document["date"]), placements=placements, unplaced=(), utilization=(),
                total_monthly_cost_cny=round(sum(p.monthly_cost_cny for p in placements), 2))


def recorded_requests(document: Mapping[str, Any], department: str) -> tuple[Request, ...]:
    return tuple(Request(**r) for r in document.get("requests", {}).get(department, ()))


# --------------------------------------------------------------------------- validity
def check_plan(catalog: Catalog, document: Mapping[str, Any], day: dt.date,
               departments: Iterable[str] | None = None) -> list[str]:
    """What makes the plan unappliable on ``day`` against ``catalog`` (empty: it applies)."""
    keep = set(departments) if departments is not None else None
    problems: list[str] = []
    placements = [p for p in document["placements"] if keep is None or p["department"] in keep]
    from_records = document.get("requests_from") == FROM_RECORDS
    for dept_name in sorted({p["department"] for p in placements}):
        try:
            dept = catalog.department(dept_name)
        except KeyError:
            problems.append(f"department {dept_name} is no longer in the catalog")
            continue
        contracts = {c.id: c for c in dept.contracts}
        current = {r.name: r for r in dept.requests}
        for want in recorded_requests(document, dept_name):
            if from_records:
                continue
            have = current.get(want.name)
            if have is None:
                problems.append(f"request {dept_name}/{want.name} was removed from the catalog since the plan")
            elif have != want:
                diffs = [f"{k} {getattr(want, k)!r} -> {getattr(have, k)!r}" for k in _REQUEST_FIELDS
                         if getattr(want, k) != getattr(have, k)]
                problems.append(f"request {dept_name}/{want.name} changed since the plan: {', '.join(diffs)}")
        for p in (p for p in placements if p["department"] == dept_name):
            c = contracts.get(p["contract"])
            if c is None:
                problems.append(f"contract {p['contract']} of {dept_name} is no longer in the catalog")
            elif c.provider != p["provider"]:
                problems.append(f"contract {c.id} of {dept_name} is now with {c.provider}, not {p['provider']}")
            elif not c.valid_on(day):
                problems.append(f"contract {c.id} of {dept_name} with {c.provider} is not valid on {day.isoformat()} "
                                f"(runs {c.start.isoformat()}..{c.end.isoformat()})")
            try:
                prov = catalog.provider(p["provider"])
            except KeyError:
                problems.append(f"operator {p['provider']} is no longer in the catalog")
                continue
            zones = {z.name for z in prov.zones}
            for z, _ in p["zones"]:
                if z not in zones:
                    problems.append(f"zone {z} of operator {prov.name} is no longer in the catalog")
    for key, want_size in sorted(document.get("sizes", {}).items()):
        tname, size = key.split("/", 1)
        tpl = catalog.templates.get(tname)
        if tpl is None:
            problems.append(f"template {tname} is no longer in the catalog")
        elif size not in tpl.sizes:
            problems.append(f"size {size} of template {tname} is no longer in the catalog")
        else:
            s = tpl.sizes[size]
            have_size = {"vcpu": s.vcpu, "ram_gb": s.ram_gb, "disk_gb": s.disk_gb}
            if have_size != want_size:
                problems.append(f"size {size} of template {tname} changed since the plan: "
                                + ", ".join(f"{k} {want_size[k]} -> {have_size[k]}" for k in have_size
                                            if have_size[k] != want_size.get(k)))
    return list(dict.fromkeys(problems))


def catalog_for_plan(catalog: Catalog, document: Mapping[str, Any]) -> Catalog:
    """The catalog whose departments' requests are the plan's own (``records`` plans), else as is."""
    if document.get("requests_from") != FROM_RECORDS:
        return catalog
    depts = []
    for d in catalog.departments:
        recorded = recorded_requests(document, d.name)
        if recorded:
            d = dataclasses.replace(d, requests=recorded)
        depts.append(d)
    return dataclasses.replace(catalog, departments=tuple(depts))


def applicable_plan(catalog: Catalog, record: PlanRecord, day: dt.date,
                    departments: Iterable[str]) -> tuple[Catalog, Plan, list[str]]:
    """(catalog to derive specs from, the Plan, notes) of a recorded plan, or PlanInvalid.

    The content hash is re-checked (a stored document that no longer matches its hash is
    refused), then ``check_plan``; a catalog that changed without breaking the plan is a note."""
    depts = list(departments)
    if content_hash(record.document) != record.content_hash:
        raise PlanInvalid(record.id, [f"its document no longer matches its content hash {record.content_hash[:12]}"])
    missing = [d for d in depts if d not in record.departments]
    if missing:
        raise PlanInvalid(record.id, [f"it places nothing of {', '.join(missing)} (covers "
                                      f"{', '.join(record.departments) or 'nothing'})"])
    problems = check_plan(catalog, record.document, day, depts)
    if problems:
        raise PlanInvalid(record.id, problems)
    notes = []
    digest = catalog_digest(catalog)
    if digest != record.catalog_digest:
        notes.append(f"the catalog changed since plan {record.id} (digest {record.catalog_digest[:12]} -> "
                     f"{digest[:12]}); nothing the plan uses for {', '.join(depts)} did")
    return catalog_for_plan(catalog, record.document), plan_from_document(record.document), notes


# --------------------------------------------------------------------------- use cases (the store passed in)
NO_PLAN_HINT = ("record one: yunshang plan --save --catalog DIR --os-cloud ENGINEER (or approve a request "
                "of it)")


def record_plan(store, catalog: Catalog, plan: Plan, *, by: str, source: str,
                departments: Iterable[str] | None = None, requests_catalog: Catalog | None = None,
                requests_from: str = FROM_CATALOG) -> PlanRecord:
    """Serialise, hash and record ``plan`` (``requests_catalog``: where the placed requests are
    defined, when not in ``catalog`` itself, e.g. approved request documents)."""
    doc = plan_document(requests_catalog or catalog, plan, departments=departments, requests_from=requests_from)
    depts = plan_departments(doc)
    if not depts:
        raise NoPlan(f"the plan for {plan.date.isoformat()} places nothing"
                     + (f" of {', '.join(sorted(set(departments)))}" if departments is not None else "")
                     + ": nothing to record")
    return store.save_plan(doc, content_hash(doc), catalog_digest(catalog), by, source, depts)


def resolve_plan(store, catalog: Catalog, department: str, plan_id: int | None,
                 day: dt.date) -> tuple[PlanRecord, Catalog, Plan, list[str]]:
    """The recorded plan to apply for ``department`` (``plan_id``, else the latest covering it),
    checked against ``catalog`` on ``day``: (record, catalog to derive specs from, Plan, notes)."""
    if plan_id is not None:
        record = store.get_plan(plan_id)
    else:
        record = store.latest_plan(department)
        if record is None:
            raise NoPlan(f"no recorded plan covers department {department}: {NO_PLAN_HINT}")
    cat, plan, notes = applicable_plan(catalog, record, day, [department])
    return record, cat, plan, notes


def plan_specs(record: PlanRecord, catalog: Catalog, plan: Plan, department: str, operators: Iterable[str],
               management_cidr: str | None = None) -> list:
    """The department's TenantSpec per operator of a resolved plan, naming the plan (id, content
    hash): what `stack up`, `tenant apply` and `request configure` build (one derivation)."""
    from yunshang.tenant import DEFAULT_MANAGEMENT_CIDR, tenant_spec

    mgmt = management_cidr or DEFAULT_MANAGEMENT_CIDR
    return [dataclasses.replace(tenant_spec(catalog, plan, department, op, management_cidr=mgmt), plan_id=record.id,
                                plan_hash=record.content_hash) for op in operators]


def _where(provider: str, contract: str, zones: Iterable) -> str:
    return f"{provider} ({contract}) " + " ".join(f"{z}:{n}" for z, n in zones)


def plan_holds_records(record: PlanRecord, department: str, records: Iterable) -> list[str]:
    """What the plan does not hold of ``department``'s approved requests (``records``: those holding
    capacity, approved or later): each approved placement on the same operator, contract, zones and
    size. Empty: building the plan builds what was approved (a request of another department, or a
    later plan of this one, cannot move it without this saying so)."""
    from yunshang import lifecycle as lc

    records = [r for r in records if r.department == department]
    approved = lc.plan_from_records(records, record.plan_date, department)
    owner: dict[str, list[int]] = {}
    for r in records:
        for pl in r.placements:
            ids = owner.setdefault(pl.request_name, [])
            if r.id not in ids:
                ids.append(r.id)
    have = {(p["request"], p["role"], p["provider"], p["contract"]): p
            for p in record.document["placements"] if p["department"] == department}
    want = {(p.request, p.role, p.provider, p.contract): p for p in approved.placements}
    problems: list[str] = []
    for key, w in sorted(want.items()):
        who = "request " + ", ".join(str(i) for i in owner.get(w.request, ()))
        what = f"{department}/{w.request} ({w.role}) of {who}"
        got = have.get(key)
        if got is None:
            elsewhere = [h for k, h in sorted(have.items()) if k[:2] == key[:2]]
            problems.append(f"it places {what} "
                            + (f"on {', '.join(_where(h['provider'], h['contract'], h['zones']) for h in elsewhere)}"
                               if elsewhere else "nowhere")
                            + f", approved on {_where(w.provider, w.contract, w.zones)}")
            continue
        zones = tuple((z, int(n)) for z, n in got["zones"])
        if zones != w.zones:
            problems.append(f"it places {what} on {_where(got['provider'], got['contract'], zones)}, approved on "
                            f"{_where(w.provider, w.contract, w.zones)}")
        size = (got["vcpu"], got["ram_gb"], got["disk_gb"])
        if size != (w.vcpu, w.ram_gb, w.disk_gb):
            problems.append(f"it sizes {what} at {size[0]} vCPU / {size[1]} GB RAM / {size[2]} GB disk, approved "
                            f"at {w.vcpu} / {w.ram_gb} / {w.disk_gb}")
    approved_names = {k[0] for k in want}
    approved_roles = {k[:2] for k in want}
    for key, h in sorted(have.items()):            # a role of an approved request that was not approved
        if key[0] in approved_names and key[:2] not in approved_roles:
            where = _where(h["provider"], h["contract"], h["zones"])
            problems.append(f"it places {department}/{key[0]} ({key[1]}) on {where}, which was not approved")
    return problems


@dataclass(frozen=True)
class PendingPlan:
    """The plan an approval will record, built (and checked) before the approval runs."""

    store: Any
    catalog: Catalog
    plan: Plan
    requests_catalog: Catalog
    department: str
    source: str

    def record(self, *, by: str) -> PlanRecord:
        return record_plan(self.store, self.catalog, self.plan, by=by, source=self.source,
                           departments=[self.department], requests_catalog=self.requests_catalog,
                           requests_from=FROM_RECORDS)


def approved_plan(store, catalog: Catalog, request_id: int, day: dt.date) -> PendingPlan:
    """The plan ``request approve`` records: the department's tenant with every request it holds
    (the approved ones and this one), as reviewed — not re-placed, so approving one request never
    moves what was approved before."""
    from yunshang import lifecycle as lc

    rec = store.get(request_id)
    holding = [r for r in store.list_requests(department=rec.department)
               if r.id == rec.id or r.state in lc.HOLDING_STATES]
    plan = lc.plan_from_records(holding, day, rec.department)
    view = lc.catalog_with_records(catalog, rec.department, holding)
    plan_document(view, plan, departments=[rec.department], requests_from=FROM_RECORDS)   # refuse before approving
    return PendingPlan(store, catalog, plan, view, rec.department, f"request approve {rec.id}")


def approval_plan(store, request_id: int) -> PlanRecord:
    """The plan ``request approve`` recorded for request ``request_id`` (the latest, when approved again)."""
    rec = store.get(request_id)
    source = f"request approve {request_id}"
    found = [p for p in store.list_plans(rec.department) if p.source == source]
    if not found:
        raise NoPlan(f"request {request_id} has no recorded plan (it was approved before plans were recorded: "
                     f"{NO_PLAN_HINT})")
    return found[-1]
