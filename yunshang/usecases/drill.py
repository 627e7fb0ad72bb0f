"""Takeover use cases: the move plan from the lifecycle store, and the drill for real on the devcloud.

The drill (an engineer of the center's Keystone): stop operator A's keystone and nova-api (by
recorded PID), re-create every affected tenant on B through the SDK engine, verify it against
its spec, restore A, and check nothing disappeared on A. Every step is timed into an evidence
record (JSON file) and the drill is one entry of the audit log, its actor the authenticated
person. The CLI (``yunshang takeover drill``) parses and renders; everything else is here.

The HTTP API does not offer the drill: it stops and restarts processes of the devcloud on the
center's own machine, which no remote person should be able to do (issue 12 lists no such
endpoint).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from typing import Any, Callable

from yunshang import lifecycle as lc
from yunshang import takeover as tk
from yunshang.authz import Identity, authorize
from yunshang.errors import CloudUnavailable, NotFound, YunshangError
from yunshang.redact import exception_text
from yunshang.usecases import Deps

UTC = dt.timezone.utc


def affected_from_store(store, operator: str) -> tuple[dict, list]:
    """Departments whose configured requests have primary placements on ``operator``: their requests
    (as placed), and the records they come from."""
    out: dict[str, dict] = {}
    records = [r for r in store.list_requests() if r.state in lc.BILLABLE_STATES]
    for r in records:
        doc = lc.parse_request_document(r.document, f"request {r.id}")
        on_op = {p.request_name for p in r.placements if p.provider == operator and p.role == "primary"}
        for q in doc.requests:
            if q.name in on_op:
                out.setdefault(r.department, {})[q.name] = q
    return {d: tuple(v[k] for k in sorted(v)) for d, v in sorted(out.items())}, records


def plan(deps: Deps, who: Identity | None, operator: str, now: dt.datetime, triggers, *, force: bool = False,
         parallel: int = 1) -> tk.TakeoverPlan:
    """The move plan for leaving ``operator``. With a lifecycle store (``deps.store``) the affected
    departments are what is configured there: reading it is a center role's (``takeover.plan``);
    without one (``deps.store`` None) the catalog's own plan, which needs no person."""
    usage: Any = ()
    affected = None
    if deps.store is not None:
        authorize(who, "takeover.plan")
        affected, _ = affected_from_store(deps.store, operator)
        usage = lc.reserved_usage(deps.store.capacity())
    if not affected:
        affected = tk.affected_from_catalog(deps.catalog, operator, now.date())
    return tk.plan_takeover(deps.catalog, operator, now, triggers, affected, usage, force=force,
                            timing=tk.Timing(parallel_tenants=parallel))


# --------------------------------------------------------------------------- the drill
class Steps:
    """Each step timed and verified into the evidence; progress lines go to ``say``."""

    def __init__(self, say: Callable[[str], None]):
        self.steps: list[dict] = []
        self.say = say

    def run(self, name: str, fn, verify: Any = ""):
        self.say(f"-> {name} ...")
        t0 = time.monotonic()
        started = dt.datetime.now(UTC)
        try:
            out = fn()
        except BaseException as exc:
            self.steps.append({"step": name, "started": started.isoformat(), "seconds": round(time.monotonic() - t0, 3),
                               "ok": False, "error": exception_text(exc)})
            raise
        rec = {"step": name, "started": started.isoformat(), "seconds": round(time.monotonic() - t0, 3), "ok": True,
               "verified": verify if not callable(verify) else verify(out)}
        self.steps.append(rec)
        self.say(f"   {rec['seconds']:.1f} s  {rec['verified']}")
        return out


def _verified(spec, clouds_file):
    from yunshang.openstack.tenant import verify_tenant

    drift = verify_tenant(spec, clouds_file)
    if drift.missing or drift.different:
        raise YunshangError(f"drill: {spec.stack_name} on {spec.operator} differs from its spec: "
                            f"{len(drift.missing)} missing, {len(drift.different)} different")
    return drift


def _api_down(operator: str, clouds_file: str) -> str:
    from yunshang.openstack import connect

    try:
        connect(operator, clouds_file, timeout_seconds=5).close()
    except CloudUnavailable as exc:
        return f"{operator} API refuses: {str(exc)[:120]}"
    raise YunshangError(f"drill: {operator}'s API still answers after its processes were stopped")


def _specs(catalog, moves, affected, records, from_op: str, to_op: str, day: dt.date, usage) -> tuple[dict, dict]:
    """Per moved department: its tenant spec on A (as configured) and on B (standby copies it already
    holds there + the re-created primaries)."""
    from yunshang.placement import place
    from yunshang.tenant import tenant_spec

    specs_a, specs_b = {}, {}
    for m in moves:
        recs = [r for r in records if r.department == m.department]
        cat_a = lc.catalog_with_records(catalog, m.department, recs)
        plan_a = lc.plan_from_records(recs, day, m.department)
        specs_a[m.department] = tenant_spec(cat_a, plan_a, m.department, from_op)
        moved_reqs = [r for r in affected[m.department] if not r.dr]
        cat_t, _ = tk.takeover_catalog(catalog, catalog.department(m.department), moved_reqs, from_op, day)
        new = place(cat_t, day, usage=usage).placements if moved_reqs else ()
        on_b = [p for p in plan_a.placements if p.provider == to_op]
        plan_b = dataclasses.replace(plan_a, placements=tuple(on_b) + tuple(new))
        reqs = {q.name: q for q in cat_a.department(m.department).requests}
        cat_b = dataclasses.replace(cat_a, departments=(dataclasses.replace(
            cat_a.department(m.department), requests=tuple(reqs.values())),))
        specs_b[m.department] = tenant_spec(cat_b, plan_b, m.department, to_op)
    return specs_a, specs_b


def _run_steps(steps: Steps, dc, from_op, to_op, clouds_file, moves, specs_a, specs_b, before, stopped,
               say: Callable[[str], None]) -> None:
    """The drill's steps; A is restored whatever happens."""
    from yunshang.devcloud import procs
    from yunshang.openstack.tenant import apply_spec, read_inventory
    from yunshang.tenant import spec_inventory

    try:
        def take_away():
            for svc in ("keystone", "nova_api"):
                name = f"{from_op}/{svc}"
                pid = procs.running_pid(dc.dir, name)
                if procs.stop(dc.dir, name):
                    stopped.append({"process": name, "pid": pid})
            return _api_down(from_op, clouds_file)
        steps.run(f"take {from_op}'s API away (keystone, nova_api)", take_away, lambda msg: msg)
        for m in moves:
            spec = specs_b[m.department]
            steps.run(f"re-create {m.department} on {to_op}",
                      lambda spec=spec: apply_spec(spec, clouds_file, say=say),
                      lambda res: f"{len(res['changes'])} changes planned, applied={res['applied']}")
            steps.run(f"verify {m.department} on {to_op}", lambda spec=spec: _verified(spec, clouds_file),
                      lambda drift, spec=spec: f"no drift: all {len(spec_inventory(spec))} objects of the spec "
                      "present and equal" + (f" ({len(drift.extra)} pre-existing extra objects left alone)"
                                             if drift.extra else ""))
    finally:
        steps.run(f"restore {from_op}", lambda: dc.restore_operator(from_op),
                  lambda started: f"restarted {', '.join(started) or 'nothing (already running)'}; API answers")
    for d, spec in specs_a.items():
        after = steps.run(f"check {d} untouched on {from_op}", lambda spec=spec: read_inventory(spec, clouds_file),
                          lambda inv, d=d: ("nothing deleted on " + from_op) if before[d] <= inv else
                          f"MISSING on {from_op}: {sorted(map(str, before[d] - inv))[:5]}")
        if not before[d] <= after:
            raise YunshangError(f"drill: objects of {d} disappeared on {from_op}")


def drill(deps: Deps, who: Identity, from_op: str, to_op: str, *, devcloud_dir: str | None = None,
          evidence_path: str | None = None, catalog_name: str = "", now: dt.datetime | None = None) -> dict:
    """Run the takeover drill from ``from_op`` to ``to_op`` on the devcloud; returns the evidence record
    (also written to ``evidence_path``, default ``drill-<A>-<B>-<time>.json``) and records it in the audit
    log. Refused before anything is read, stopped or written unless ``who`` is an engineer."""
    from yunshang.devcloud import Devcloud
    from yunshang.openstack.tenant import read_inventory

    actor = authorize(who, "takeover.drill").actor
    if not deps.clouds_file:
        raise NotFound("the drill needs the devcloud's clouds.yaml (--clouds FILE)")
    catalog, store, clouds_file = deps.catalog, deps.store, deps.clouds_file
    now = now or dt.datetime.now(UTC)
    day = now.date()
    dc = Devcloud(devdir=devcloud_dir) if devcloud_dir else Devcloud()
    running = [o.name for o in dc.layout.operators]
    if from_op not in running or to_op not in running:
        raise NotFound(f"devcloud at {dc.dir} runs {running}; need {from_op} and {to_op}")
    affected, records = affected_from_store(store, from_op)
    usage = lc.reserved_usage(store.capacity())
    if not affected:
        raise NotFound(f"no configured request in the store has a primary placement on {from_op}: nothing to drill")
    plan_ = tk.plan_takeover(catalog, from_op, now, (), affected, usage, force=True)
    moves = [m for m in plan_.moves if m.to_operator == to_op]
    skipped = [f"{m.department}: backup operator {m.to_operator or 'none'}" for m in plan_.moves
               if m.to_operator != to_op]
    if not moves:
        raise NotFound(f"no affected department has a backup contract with {to_op}: " + "; ".join(skipped))
    bad = [m for m in moves if not m.capacity_ok]
    if bad:
        raise YunshangError("drill refused, capacity check failed on " + to_op + ": " +
                            "; ".join(f"{m.department}: {', '.join(m.problems)}" for m in bad))
    specs_a, specs_b = _specs(catalog, moves, affected, records, from_op, to_op, day, usage)
    steps = Steps(deps.say)
    before = {}
    for d, spec in specs_a.items():
        before[d] = steps.run(f"inventory {d} on {from_op}", lambda spec=spec: read_inventory(spec, clouds_file),
                              lambda inv: f"{len(inv)} objects recorded before the drill")
    stopped: list[dict] = []
    evidence: dict[str, Any] = {
        "drill": f"{from_op} -> {to_op}", "by": actor, "started": now.isoformat(), "catalog": catalog_name,
        "plan": tk.plan_to_dict(dataclasses.replace(plan_, moves=tuple(moves))), "skipped": skipped}
    path = evidence_path or f"drill-{from_op}-{to_op}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    failure = None
    try:
        _run_steps(steps, dc, from_op, to_op, clouds_file, moves, specs_a, specs_b, before, stopped, deps.say)
    except Exception as exc:  # noqa: BLE001 - recorded in the evidence, then re-raised
        failure = exc
    total = sum(s["seconds"] for s in steps.steps)
    rto = catalog.provider(from_op).sla.rto_minutes * 60
    evidence.update({"finished": dt.datetime.now(UTC).isoformat(), "stopped": stopped, "steps": steps.steps,
                     "total_seconds": round(total, 3), "rto_seconds": rto, "within_rto": total <= rto,
                     "ok": failure is None,
                     "error": exception_text(failure) if failure is not None else "", "evidence": path})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(evidence, fh, indent=2, ensure_ascii=False, default=str)
    store.record_event(actor, "takeover-drill", f"operator:{from_op}",
                       {"to": to_op, "evidence": os.path.abspath(path), "total_seconds": evidence["total_seconds"],
                        "ok": failure is None, "departments": [m.department for m in moves]},
                       reason="drill" if failure is None else f"drill failed: {evidence['error']}")
    if failure is not None:
        if isinstance(failure, YunshangError):
            raise failure
        raise YunshangError(f"drill failed ({type(failure).__name__}: {evidence['error']}); evidence: {path}")
    return evidence
