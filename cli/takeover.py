"""``yunshang takeover``: evaluate the takeover triggers, plan the move to the backup operators, drill it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time

import click

from cli.common import (
    HttpUrl, OutPath, catalog_option, clouds_option, echo_json, load_catalog, moment_type, output_option, table,
)
from yunshang import lifecycle as lc
from yunshang import takeover as tk
from yunshang.errors import CloudUnavailable, NotFound, YunshangError
from yunshang.redact import exception_text

UTC = dt.timezone.utc


def db_option(f):
    return click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
                        help="Lifecycle store: which departments hold tenants on the operator, what is reserved. "
                             "Env: YUNSHANG_DB. Without it: the catalog's plan.")(f)


# --------------------------------------------------------------------------- adapters
def read_trigger_inputs(prometheus_url: str, operator: str, now: dt.datetime, months: int):
    """From the exporters' data in Prometheus: the operator's recent `up` samples and, per contract,
    whether it breached its SLA in each of the last ``months`` closed calendar months."""
    from yunshang.promread import PrometheusClient
    from yunshang.sla import month_bounds

    client = PrometheusClient(prometheus_url)
    window = dt.timedelta(hours=6)
    up = client.raw_samples(f'yunshang_operator_up{{operator="{operator}"}}', now - window,
                            now + dt.timedelta(seconds=1), chunk=window + dt.timedelta(seconds=1))
    samples = sorted((t, v) for s in up for t, v in s.points)
    ends = []
    m_start = month_bounds(now)[0]
    for _ in range(months):
        ends.insert(0, m_start)
        m_start = month_bounds(m_start - dt.timedelta(seconds=1))[0]
    breached: dict[str, list[bool]] = {}
    for i, end in enumerate(ends):
        for s in client.query(f'yunshang_sla_breached{{operator="{operator}"}}', at=end - dt.timedelta(seconds=1)):
            cid = s.label("contract")
            if cid:
                breached.setdefault(cid, [False] * i).append(s.points[0][1] >= 1)
        for v in breached.values():
            v.extend([False] * (i + 1 - len(v)))
    return samples, breached


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


def _print_plan(plan: tk.TakeoverPlan) -> None:
    click.echo(f"takeover of {plan.operator} evaluated at {plan.at.strftime('%Y-%m-%d %H:%M UTC')}")
    for t in plan.triggers:
        click.echo(f"  [{'FIRED' if t.fired else '  -  '}] {t.name:20} {t.department + ': ' if t.department else ''}"
                   f"{t.detail}")
    if not plan.moves:
        click.echo("no move planned" + ("" if plan.triggered else " (no trigger fired; --force plans anyway)"))
        return
    click.echo(table(["#", "department", "lvl", "to", "contract", "servers", "vcpu", "capacity", "expected",
                      "done after", "RTO", "within"],
                     [[m.order, m.department, m.mlps_level, m.to_operator or "-", m.backup_contract or "-", m.servers,
                       f"{m.vcpu:g}", "ok" if m.capacity_ok else "NO", f"{m.expected_seconds / 60:.0f} min",
                       f"{m.done_after_seconds / 60:.0f} min", f"{m.rto_seconds / 60:.0f} min",
                       "yes" if m.within_rto else "NO"] for m in plan.moves]))
    for m in plan.moves:
        for p in m.problems:
            click.echo(f"  {m.department}: {p}")
        for d in m.data:
            click.echo(f"  {m.department}/{d.request}: {d.how}: {d.detail}")


@click.group()
def takeover() -> None:
    """Backup-cloud takeover: triggers, the move plan, and a real drill on the devcloud.

    \b
    Triggers (any fires -> the government team takes over the backup cloud):
      operator-down        the operator's API down longer than its RTO (yunshang_operator_up)
      sla-breached         a contract breached its SLA N months running (yunshang_sla_breached)
      contract-terminated  a department's primary contract with the operator ended / declared terminated
    \b
    Example:
      yunshang takeover plan --operator unicom --prometheus http://127.0.0.1:9090
      yunshang takeover drill --from telecom --to unicom --clouds clouds.yaml --os-cloud person-center-engineer
    """


@takeover.command()
@click.option("--operator", required=True, metavar="OP", help="The operator the center would leave.")
@catalog_option
@db_option
@click.option("--prometheus", type=HttpUrl(), metavar="URL", envvar="YUNSHANG_PROMETHEUS",
              help="Prometheus with the exporters' data.")
@click.option("--terminated", multiple=True, metavar="CONTRACT", help="Declare a contract terminated (repeatable).")
@click.option("--breach-months", type=click.IntRange(1, 12), default=2, show_default=True,
              help="Consecutive breached months that trigger a takeover.")
@click.option("--force", is_flag=True, help="Plan the moves even if no trigger fired (for drills).")
@click.option("--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tenants the team rebuilds at once (divides the expected sequence time).")
@click.option("--at", "at", type=moment_type(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
              help="Evaluate as of this UTC time (post-incident review); default: now.")
@output_option
def plan(operator, catalog_dir, db_url, prometheus, terminated, breach_months, force, parallel, at, output):
    """Evaluate the triggers for OP and plan every affected department's move to its backup operator."""
    catalog = load_catalog(catalog_dir)
    try:
        catalog.provider(operator)
    except KeyError:
        raise NotFound(f"unknown operator {operator!r} in catalog {catalog_dir}") from None
    primaries = {c.id for d in catalog.departments for c in d.contracts if c.provider == operator and c.role == "primary"}
    unknown = sorted(set(terminated) - primaries)
    if unknown:
        raise click.BadParameter(f"{', '.join(x[:64] for x in unknown)}: not a primary contract with {operator} in "
                                 f"the catalog (it has: {', '.join(sorted(primaries)[:12]) or 'none'})",
                                 param_hint="--terminated")
    now = at.replace(tzinfo=UTC) if at else dt.datetime.now(UTC)
    up, breached = read_trigger_inputs(prometheus, operator, now, breach_months) if prometheus else ([], {})
    triggers = tk.evaluate_triggers(catalog, operator, now, up, breached, breach_months, terminated)
    usage = ()
    affected = None
    if db_url:
        from yunshang.store import open_store

        with open_store(db_url) as store:
            affected, _ = affected_from_store(store, operator)
            usage = lc.reserved_usage(store.capacity())
    if not affected:
        affected = tk.affected_from_catalog(catalog, operator, now.date())
    result = tk.plan_takeover(catalog, operator, now, triggers, affected, usage, force=force,
                              timing=tk.Timing(parallel_tenants=parallel))
    if output == "json":
        echo_json(tk.plan_to_dict(result))
    else:
        _print_plan(result)


# --------------------------------------------------------------------------- the drill
class _Steps:
    def __init__(self):
        self.steps: list[dict] = []

    def run(self, name: str, fn, verify: str = ""):
        click.echo(f"-> {name} ...", err=True)
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
        click.echo(f"   {rec['seconds']:.1f} s  {rec['verified']}", err=True)
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


def _run_drill(steps, dc, procs, from_op, to_op, clouds_file, moves, specs_a, specs_b, before, stopped,
               apply_spec, read_inventory, spec_inventory) -> None:
    """The drill's steps; A is restored whatever happens."""
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
                      lambda spec=spec: apply_spec(spec, clouds_file, say=lambda s: click.echo(s, err=True)),
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


@takeover.command()
@click.option("--from", "from_op", required=True, metavar="OP", help="Operator A, whose API the drill takes away.")
@click.option("--to", "to_op", required=True, metavar="OP", help="Operator B, the backup the tenants move to.")
@catalog_option
@clouds_option
@db_option
@click.option("--devcloud-dir", type=click.Path(file_okay=False), envvar="YUNSHANG_DEVCLOUD_DIR",
              help="The devcloud whose operator A is stopped and restored (default: the usual one).")
@click.option("--evidence", "evidence_path", type=OutPath(),
              help="Write the evidence record (JSON) here (default: drill-<A>-<B>-<time>.json in the cwd).")
@click.option("--os-cloud", "os_cloud", required=True, metavar="NAME",
              help="Who runs the drill: an engineer's clouds.yaml entry (e.g. person-center-engineer).")
@output_option
def drill(from_op, to_op, catalog_dir, clouds_file, db_url, devcloud_dir, evidence_path, os_cloud, output):
    """Run the takeover for real on the devcloud: stop A's keystone and nova-api (by recorded PID),
    re-create the affected tenants on B through the SDK engine, verify, restore A. Nothing is deleted on A.

    The affected departments are those whose configured requests (in the lifecycle store) have
    primary placements on A and a valid backup contract with B.
    """
    from yunshang.devcloud import Devcloud
    from yunshang.devcloud import procs
    from yunshang.openstack.tenant import apply_spec, read_inventory
    from yunshang.tenant import spec_inventory
    from yunshang.store import open_store
    from yunshang.tenant import tenant_spec

    from cli.request import who
    from yunshang.authz import authorize

    if not clouds_file:
        raise click.UsageError("drill needs --clouds FILE (the devcloud's clouds.yaml)")
    actor = authorize(who(os_cloud, clouds_file), "takeover.drill").actor
    catalog = load_catalog(catalog_dir)
    now = dt.datetime.now(UTC)
    day = now.date()
    dc = Devcloud(devdir=devcloud_dir) if devcloud_dir else Devcloud()
    if from_op not in [o.name for o in dc.layout.operators] or to_op not in [o.name for o in dc.layout.operators]:
        raise NotFound(f"devcloud at {dc.dir} runs {[o.name for o in dc.layout.operators]}; "
                       f"need {from_op} and {to_op}")
    with open_store(db_url) as store:
        affected, records = affected_from_store(store, from_op)
        usage = lc.reserved_usage(store.capacity())
    if not affected:
        raise NotFound(f"no configured request in the store has a primary placement on {from_op}: nothing to drill")
    plan_ = tk.plan_takeover(catalog, from_op, now, (), affected, usage, force=True)
    moves = [m for m in plan_.moves if m.to_operator == to_op]
    skipped = [f"{m.department}: backup operator {m.to_operator or 'none'}" for m in plan_.moves if m.to_operator != to_op]
    if not moves:
        raise NotFound(f"no affected department has a backup contract with {to_op}: " + "; ".join(skipped))
    bad = [m for m in moves if not m.capacity_ok]
    if bad:
        raise YunshangError("drill refused, capacity check failed on " + to_op + ": " +
                            "; ".join(f"{m.department}: {', '.join(m.problems)}" for m in bad))
    steps = _Steps()
    specs_a, specs_b, before = {}, {}, {}
    for m in moves:
        recs = [r for r in records if r.department == m.department]
        cat_a = lc.catalog_with_records(catalog, m.department, recs)
        plan_a = lc.plan_from_records(recs, day, m.department)
        specs_a[m.department] = tenant_spec(cat_a, plan_a, m.department, from_op)
        # On B: what the department already holds there (standby copies) + the re-created primaries.
        moved_reqs = [r for r in affected[m.department] if not r.dr]
        cat_t, _ = tk.takeover_catalog(catalog, catalog.department(m.department), moved_reqs, from_op, day)
        from yunshang.placement import place

        new = place(cat_t, day, usage=usage).placements if moved_reqs else ()
        on_b = [p for p in plan_a.placements if p.provider == to_op]
        plan_b = dataclasses.replace(plan_a, placements=tuple(on_b) + tuple(new))
        reqs = {q.name: q for q in cat_a.department(m.department).requests}
        cat_b = dataclasses.replace(cat_a, departments=(dataclasses.replace(
            cat_a.department(m.department), requests=tuple(reqs.values())),))
        specs_b[m.department] = tenant_spec(cat_b, plan_b, m.department, to_op)
    for d, spec in specs_a.items():
        before[d] = steps.run(f"inventory {d} on {from_op}", lambda spec=spec: read_inventory(spec, clouds_file),
                              lambda inv: f"{len(inv)} objects recorded before the drill")
    stopped = []
    evidence = {"drill": f"{from_op} -> {to_op}", "by": actor, "started": now.isoformat(), "catalog": catalog_dir,
                "plan": tk.plan_to_dict(dataclasses.replace(plan_, moves=tuple(moves))), "skipped": skipped}
    path = evidence_path or f"drill-{from_op}-{to_op}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    failure = None
    try:
        _run_drill(steps, dc, procs, from_op, to_op, clouds_file, moves, specs_a, specs_b, before, stopped,
                   apply_spec, read_inventory, spec_inventory)
    except Exception as exc:  # noqa: BLE001 - recorded in the evidence, then re-raised
        failure = exc
    total = sum(s["seconds"] for s in steps.steps)
    rto = catalog.provider(from_op).sla.rto_minutes * 60
    evidence.update({"finished": dt.datetime.now(UTC).isoformat(), "stopped": stopped, "steps": steps.steps,
                     "total_seconds": round(total, 3), "rto_seconds": rto, "within_rto": total <= rto,
                     "ok": failure is None, "error": str(failure).splitlines()[0][:300] if failure else ""})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(evidence, fh, indent=2, ensure_ascii=False, default=str)
    with open_store(db_url) as store:
        store.record_event(actor, "takeover-drill", f"operator:{from_op}",
                           {"to": to_op, "evidence": os.path.abspath(path), "total_seconds": evidence["total_seconds"],
                            "ok": failure is None, "departments": [m.department for m in moves]},
                           reason="drill" if failure is None else f"drill failed: {evidence['error']}")
    if failure is not None:
        if isinstance(failure, YunshangError):
            raise failure
        raise YunshangError(f"drill failed ({type(failure).__name__}: {evidence['error']}); evidence: {path}")
    if output == "json":
        echo_json(evidence)
    else:
        click.echo(table(["step", "seconds", "verified"], [[s["step"], f"{s['seconds']:.1f}", s.get("verified", "")]
                                                           for s in steps.steps]))
        click.echo(f"total {total:.1f} s against an RTO of {evidence['rto_seconds'] / 60:.0f} min; "
                   f"evidence: {path}")
