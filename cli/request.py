"""``yunshang request``: capacity requests through their lifecycle, every step in the audit log."""
from __future__ import annotations

import datetime as dt
import os

import click

from cli.common import catalog_option, clouds_option, echo_json, load_catalog, output_option, table
from yunshang import lifecycle as lc
from yunshang.errors import CloudUnavailable, InputInvalid, NotFound, Problem, ToolMissing, YunshangError


def db_option(f):
    return click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
                        help="Lifecycle store: sqlite:///PATH or postgresql://user@host:port/db. Env: YUNSHANG_DB; "
                             "default: SQLite under ~/.local/state/yunshang/.")(f)


def by_option(required_reason: bool = False):
    def deco(f):
        f = click.option("--by", "actor", envvar="YUNSHANG_ACTOR", required=True, metavar="NAME",
                         help="Who acts (recorded in the audit log). Env: YUNSHANG_ACTOR.")(f)
        if required_reason:
            f = click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")(f)
        return f
    return deco


def _store(ctx: click.Context):
    from yunshang.store import open_store

    obj = ctx.find_root().ensure_object(dict)
    if "store" not in obj:
        obj["store"] = open_store(ctx.find_object(dict).get("db_url") if ctx.find_object(dict) else None)
        ctx.find_root().call_on_close(obj["store"].close)
    return obj["store"]


@click.group()
@db_option
@click.pass_context
def request(ctx: click.Context, db_url: str | None) -> None:
    """Capacity requests through their lifecycle, each step recorded.

    \b
    submit FILE -> review ID -> approve|reject ID -> configure ID -> publish ID
      -> reclaim (plan) -> reclaim-confirm ID | keep ID
    \b
    Example:
      yunshang request submit examples/requests/health-his.yaml --by wj-admin
      yunshang request review 1 --by li
      yunshang request approve 1 --by wang --reason "within contract ceiling"
      yunshang request configure 1 --engine sdk --clouds clouds.yaml --by li
      yunshang request publish 1 --by li
      yunshang request log

    The audit log is append-only: the database refuses UPDATE and DELETE on it,
    entries are hash-chained (`request log --verify`), and no command edits it.
    """
    ctx.ensure_object(dict)["db_url"] = db_url


def _record_json(r) -> dict:
    return {"id": r.id, "department": r.department, "title": r.title, "state": r.state,
            "submitted_by": r.submitted_by, "source_file": r.source_file,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            "engine": r.engine, "configured_at": r.configured_at and r.configured_at.isoformat(),
            "published_at": r.published_at and r.published_at.isoformat(),
            "reclaimed_at": r.reclaimed_at and r.reclaimed_at.isoformat(),
            "monthly_cost_cny": round(sum(p.monthly_cost_cny for p in r.placements), 2),
            "placements": [p.__dict__ for p in r.placements], "document": r.document}


def _show(r, output: str, message: str = "") -> None:
    if output == "json":
        echo_json(_record_json(r))
        return
    if message:
        click.echo(message)
    click.echo(f"request {r.id}  {r.department}  {r.title}  [{r.state}]")
    if r.placements:
        click.echo(table(["request", "role", "operator", "contract", "zone", "n", "vcpu", "ram_gb", "disk_gb",
                          "CNY/month"],
                         [[p.request_name, p.role, p.provider, p.contract, p.zone, p.instances, f"{p.vcpu:g}",
                           f"{p.ram_gb:g}", f"{p.disk_gb:g}", f"{p.monthly_cost_cny:,.2f}"] for p in r.placements]))
        click.echo(f"monthly cost: {sum(p.monthly_cost_cny for p in r.placements):,.2f} CNY")


def _read_document(path: str, catalog) -> lc.RequestDocument:
    from yunshang.catalog import read_request_document

    def level(name: str):
        try:
            return catalog.department(name).mlps_level
        except KeyError:
            return None
    return read_request_document(path, level)


@request.command()
@click.argument("file", type=click.Path(dir_okay=False))
@catalog_option
@by_option()
@output_option
@click.pass_context
def submit(ctx, file, catalog_dir, actor, output):
    """Submit a department's templated request FILE (YAML: department, title, requests, probes).

    The entries use the catalog's request format (name, template, size, count,
    mlps_level, ha, dr, secret). Checked against the catalog before anything is stored.
    """
    catalog = load_catalog(catalog_dir)
    doc = _read_document(file, catalog)
    problems = lc.validate_against_catalog(doc, catalog, file)
    if problems:
        raise InputInvalid(problems)
    r = _store(ctx).submit(doc, by=actor, source_file=os.path.abspath(file))
    _show(r, output, f"submitted as request {r.id}; next: yunshang request review {r.id}")


def _live_usage(catalog, clouds_file: str, notes: list[str]):
    """Live used capacity per zone from each operator's Placement (through yunshang.openstack).

    Operators whose cloud is not in ``clouds_file`` are skipped (and said so in the notes)."""
    from yunshang.capacity import to_usage
    from yunshang.openstack import cloud_names
    from yunshang.openstack.capacity import read_operator_snapshot

    defined = set(cloud_names(clouds_file))
    zones = []
    for prov in catalog.providers:
        if prov.cloud not in defined:
            notes.append(f"operator {prov.name}: cloud {prov.cloud!r} not in {clouds_file}; live usage not read")
            continue
        snap = read_operator_snapshot(prov, clouds_file)
        if not snap.ok:
            raise CloudUnavailable(f"operator {prov.name}: {snap.error}")
        zones.extend(snap.zones)
    return to_usage(zones)


@request.command()
@click.argument("request_id", type=int)
@catalog_option
@clouds_option
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Contract validity date (default: today).")
@by_option()
@output_option
@click.pass_context
def review(ctx, request_id, catalog_dir, clouds_file, on, actor, output):
    """Validate request ID against catalog, contracts and capacity; record placement and monthly cost.

    Capacity counted: the catalog's schedulable capacity per zone, minus what
    already-approved requests reserve in the store, and (with --clouds) what
    each operator's Placement reports as used, whichever is larger.
    """
    from yunshang.store import CapacityRow

    try:
        from yunshang.placement import place
    except ImportError:
        raise ToolMissing("review needs yunshang/placement.py (the placement core), not present in this checkout") \
            from None
    store = _store(ctx)
    rec = store.get(request_id)
    catalog = load_catalog(catalog_dir)
    doc = lc.parse_request_document(rec.document, f"request {request_id}")
    problems = lc.validate_against_catalog(doc, catalog, f"request {request_id}")
    if problems:
        raise InputInvalid(problems)
    day = on.date() if on else dt.date.today()
    usage = lc.reserved_usage(store.capacity())
    notes = []
    if clouds_file:
        live = _live_usage(catalog, clouds_file, notes)
        usage = lc.merge_usage(usage, live)
        notes.append(f"live usage read from {len(live)} zones via {clouds_file}")
    committed = lc.committed_cost_cny(store.list_requests(department=doc.department), doc.department, rec.id)
    plan = place(lc.catalog_for_review(catalog, doc, committed), day, usage=usage)
    unplaced = [u for u in plan.unplaced if u.department == doc.department]
    if unplaced:
        raise YunshangError("request cannot be placed: " + "; ".join(
            f"{u.request} ({u.role}): {', '.join(u.reasons)}" for u in unplaced))
    rows = lc.placement_rows(plan, doc.department)
    caps = []
    for prov, zone in sorted({(r.provider, r.zone) for r in rows}):
        z = catalog.provider(prov).zone(zone)
        caps.append(CapacityRow(prov, zone, z.capacity("vcpu"), z.capacity("ram_gb"), z.capacity("disk_gb")))
    dept = catalog.department(doc.department)
    for c in dept.contracts:
        cost = sum(r.monthly_cost_cny for r in rows if r.contract == c.id)
        if cost:
            notes.append(f"contract {c.id} ({c.provider}, {c.role}): +{cost:,.2f} CNY/month on top of "
                         f"{committed.get(c.id, 0.0):,.2f} already held, ceiling {c.ceiling_cny_per_month:,.0f}")
    rec = store.review(request_id, actor, rows, caps, notes)
    _show(rec, output, f"reviewed request {rec.id}; next: approve or reject")
    if output != "json":
        for n in notes:
            click.echo("  " + n)


@request.command()
@click.argument("request_id", type=int)
@by_option(required_reason=True)
@output_option
@click.pass_context
def approve(ctx, request_id, actor, reason, output):
    """Approve request ID, reserving its reviewed placement (refused if capacity ran out meanwhile)."""
    r = _store(ctx).approve(request_id, actor, reason)
    _show(r, output, f"approved request {r.id}; next: yunshang request configure {r.id}")


@request.command()
@click.argument("request_id", type=int)
@by_option(required_reason=True)
@output_option
@click.pass_context
def reject(ctx, request_id, actor, reason, output):
    """Reject request ID (final)."""
    _show(_store(ctx).reject(request_id, actor, reason), output, f"rejected request {request_id}")


@request.command()
@click.argument("request_id", type=int)
@click.option("--engine", type=click.Choice(["sdk", "pulumi"]), default="sdk", show_default=True,
              help="sdk: openstacksdk applier (no Pulumi needed); pulumi: stack up (needs the pulumi binary).")
@catalog_option
@clouds_option
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Contract validity date (default: today).")
@by_option()
@output_option
@click.pass_context
def configure(ctx, request_id, engine, catalog_dir, clouds_file, on, actor, output):
    """Apply the tenant(s) of approved request ID through the chosen engine, then record it."""
    store = _store(ctx)
    rec = store.get(request_id)
    lc.transition(rec.state, "configure", actor)          # refuse early, before touching a cloud
    catalog = load_catalog(catalog_dir)
    day = on.date() if on else dt.date.today()
    holding = [r for r in store.list_requests(department=rec.department)
               if r.id == rec.id or r.state in lc.HOLDING_STATES]
    details = apply_request(rec, holding, catalog, day, engine, clouds_file)
    r = store.configure(request_id, actor, engine, details)
    _show(r, output, f"configured request {r.id} through {engine}; next: yunshang request publish {r.id}")


PULUMI_MISSING = ("configure --engine pulumi needs the `pulumi` CLI on PATH (https://www.pulumi.com/docs/install/); "
                  "it is not installed here: use --engine sdk")


def apply_request(rec, holding, catalog, day, engine: str, clouds_file: str | None) -> dict:
    """Apply the department's tenant on every operator the request is placed on; returns what was done."""
    import shutil

    from yunshang.tenant import tenant_spec

    plan = lc.plan_from_records(holding, day, rec.department)
    catalog = lc.catalog_with_records(catalog, rec.department, holding)
    operators = sorted({p.provider for p in rec.placements})
    specs = [tenant_spec(catalog, plan, rec.department, op) for op in operators]
    if engine == "pulumi":
        if shutil.which("pulumi") is None:
            raise ToolMissing(PULUMI_MISSING)
        try:
            from stacks.automation import up_stack  # type: ignore  # the tenant helper's Automation API front
        except ImportError:
            raise ToolMissing("configure --engine pulumi needs stacks/automation.py (up_stack), "
                              "not present in this checkout") from None
        return {s.operator: up_stack(catalog, plan, s, clouds_file, on_output=lambda m: click.echo(m, err=True))
                for s in specs}
    if not clouds_file:
        raise click.UsageError("configure --engine sdk needs --clouds FILE (clouds.yaml with the operators)")
    try:
        from yunshang.openstack import tenant as engine_mod
    except ImportError:
        raise ToolMissing("configure --engine sdk needs yunshang/openstack/tenant.py (the SDK engine), "
                          "not present in this checkout") from None
    done = {}
    for s in specs:
        done[s.operator] = engine_mod.apply_spec(s, clouds_file, say=lambda m: click.echo(m, err=True))
    return done


@request.command()
@click.argument("request_id", type=int)
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False),
              help="Catalog: the department's own probes are added to the request's.")
@by_option()
@output_option
@click.pass_context
def publish(ctx, request_id, catalog_dir, actor, output):
    """Mark request ID in service, recording the SLA probe targets the exporter will probe."""
    store = _store(ctx)
    rec = store.get(request_id)
    probes = list(rec.document.get("probes", []))
    if catalog_dir:
        names = {p["name"] for p in probes}
        try:
            dept = load_catalog(catalog_dir).department(rec.department)
        except KeyError:
            raise NotFound(f"department {rec.department!r} is not in the catalog {catalog_dir}") from None
        probes += [{"name": p.name, "kind": p.kind, "target": p.target, "contract": p.contract}
                   for p in dept.probes if p.name in {pl.request_name for pl in rec.placements} | names]
    r = store.publish(request_id, actor, probes)
    _show(r, output, f"published request {r.id} with {len(probes)} probe target(s)")


@request.command(name="reclaim")
@catalog_option
@click.option("--idle-days", type=click.IntRange(1), default=None,
              help="Also propose tenants whose servers were idle for N days by the exporter's data.")
@click.option("--prometheus", metavar="URL", help="Prometheus base URL (needed with --idle-days).")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Evaluation date (default: today).")
@click.option("--mark", is_flag=True, help="Move the candidates to reclaim-planned (audited). Nothing is deleted.")
@click.option("--by", "actor", envvar="YUNSHANG_ACTOR", metavar="NAME", help="Who marks (with --mark).")
@output_option
@click.pass_context
def reclaim_plan(ctx, catalog_dir, idle_days, prometheus, on, mark, actor, output):
    """Propose reclaims: contract ended, or servers idle N days. A reviewed plan, never a silent delete.

    \b
    Then, per request:  reclaim-confirm ID --by --reason   (or keep ID --by --reason)
    """
    store = _store(ctx)
    catalog = load_catalog(catalog_dir)
    day = on.date() if on else dt.date.today()
    idle = {}
    if idle_days:
        if not prometheus:
            raise click.UsageError("--idle-days needs --prometheus URL (the exporter's data)")
        at = dt.datetime.combine(day, dt.time(), dt.timezone.utc) if on else None
        idle = idle_tenants(prometheus, idle_days, at)
    live = [r for r in store.list_requests() if r.state in (lc.CONFIGURED, lc.PUBLISHED, lc.MONITORED)]
    candidates = lc.reclaim_candidates(live, catalog, day, idle, idle_days or 0)
    if mark:
        if not actor:
            raise click.UsageError("--mark needs --by NAME")
        for c in candidates:
            store.plan_reclaim(c.request_id, actor, "; ".join(c.reasons), evidence=c.evidence)
    if output == "json":
        echo_json([c.__dict__ for c in candidates])
        return
    if not candidates:
        click.echo("nothing to reclaim")
        return
    click.echo(table(["request", "department", "state", "reasons"],
                     [[c.request_id, c.department, c.state, "; ".join(c.reasons)] for c in candidates]))
    click.echo("marked reclaim-planned" if mark else "plan only: re-run with --mark --by NAME to record it")


@request.command()
@click.argument("request_id", type=int)
@click.option("--prometheus", required=True, metavar="URL", envvar="YUNSHANG_PROMETHEUS",
              help="Prometheus scraping the exporters: the request's probes must have data there.")
@click.option("--within-days", type=click.IntRange(1), default=1, show_default=True,
              help="A probe counts as monitored when it has a sample this recent.")
@by_option()
@output_option
@click.pass_context
def monitor(ctx, request_id, prometheus, within_days, actor, output):
    """Mark published request ID monitored, once every one of its probe targets has data in Prometheus."""
    from yunshang.promread import PrometheusClient

    store = _store(ctx)
    rec = store.get(request_id)
    lc.transition(rec.state, "monitor", actor)
    log = store.audit_log(subject=f"request:{request_id}")
    probes = next((e.after.get("probes", []) for e in reversed(log) if e.action == "publish"), [])
    if not probes:
        raise YunshangError(f"request {request_id} was published without probe targets: nothing to monitor")
    client = PrometheusClient(prometheus)
    seen, missing = [], []
    for p in probes:
        q = (f'last_over_time(yunshang_probe_success{{department="{rec.department}",probe="{p["name"]}"}}'
             f'[{within_days}d])')
        (seen if client.query(q) else missing).append(p["name"])
    if missing:
        raise YunshangError(f"request {request_id}: no probe data in {prometheus} within {within_days} day(s) for "
                            f"{', '.join(missing)} (is the exporter probing them?)")
    r = store.monitor(request_id, actor)
    _show(r, output, f"request {r.id} is monitored: probe data present for {', '.join(seen)}")


IDLE_SERIES = 'yunshang_quota_in_use{service="compute",resource="instances"}'


def idle_tenants(prometheus_url: str, days: int, at: dt.datetime | None = None) -> dict[tuple[str, str], float]:
    """(department, operator) whose project had no server in use at any scrape over the last N days.

    The exporters publish quota usage per department and operator, not per-server CPU, so
    "idle" here means: nothing running there for the whole period, AND the exporter's data
    covers the whole period (a tenant first seen yesterday is not "idle for 30 days").
    """
    from yunshang.promread import PrometheusClient

    client = PrometheusClient(prometheus_url)
    at = at or dt.datetime.now(dt.timezone.utc)
    oldest = {(s.label("department"), s.label("operator")): s.points[0][1] for s in client.query(
        f"min_over_time(timestamp({IDLE_SERIES})[{days}d:5m])", at=at) if s.points}
    out = {}
    for s in client.query(f"max_over_time({IDLE_SERIES}[{days}d])", at=at):
        key = (s.label("department"), s.label("operator"))
        covered = key in oldest and oldest[key] <= at.timestamp() - days * 86400 + 3600
        if s.points and s.points[0][1] == 0 and all(key) and covered:
            out[key] = float(days)
    return out


@request.command(name="reclaim-confirm")
@click.argument("request_id", type=int)
@by_option(required_reason=True)
@output_option
@click.pass_context
def reclaim_confirm(ctx, request_id, actor, reason, output):
    """Confirm a planned reclaim: releases the reservation and stops the bill. The tenant itself is
    removed separately (yunshang tenant destroy), so nothing disappears without a person doing it."""
    r = _store(ctx).reclaim(request_id, actor, reason)
    _show(r, output, f"reclaimed request {r.id}; remove the tenant with: yunshang tenant destroy {r.department} "
                     f"--operator {' / '.join(sorted({p.provider for p in r.placements}))}")


@request.command()
@click.argument("request_id", type=int)
@by_option(required_reason=True)
@output_option
@click.pass_context
def keep(ctx, request_id, actor, reason, output):
    """Cancel a planned reclaim: request ID stays published."""
    _show(_store(ctx).keep(request_id, actor, reason), output, f"kept request {request_id}")


@request.command(name="list")
@click.option("--state", type=click.Choice(lc.STATES))
@click.option("--department")
@output_option
@click.pass_context
def list_(ctx, state, department, output):
    """List requests with their state and monthly cost."""
    recs = _store(ctx).list_requests(state=state, department=department)
    if output == "json":
        echo_json([_record_json(r) for r in recs])
        return
    click.echo(table(["id", "department", "title", "state", "CNY/month", "updated"],
                     [[r.id, r.department, r.title, r.state,
                       f"{sum(p.monthly_cost_cny for p in r.placements):,.2f}",
                       r.updated_at.strftime("%Y-%m-%d %H:%M")] for r in recs]))


@request.command()
@click.argument("request_id", type=int)
@output_option
@click.pass_context
def show(ctx, request_id, output):
    """Show request ID with its placement."""
    _show(_store(ctx).get(request_id), output)


@request.command()
@click.option("--request", "request_id", type=int, help="Only this request's entries.")
@click.option("--verify", is_flag=True, help="Recompute the hash chain; exit 1 if any entry was altered.")
@output_option
@click.pass_context
def log(ctx, request_id, verify, output):
    """The audit log (read-only): who did what, when, before/after, why."""
    store = _store(ctx)
    entries = store.audit_log(subject=f"request:{request_id}" if request_id else None)
    if verify:
        ok, bad, n = store.verify_audit()
        if not ok:
            raise YunshangError(f"audit log chain broken at entry {bad} (of {n} checked): it was altered "
                                "outside the tool")
    if output == "json":
        echo_json([{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                    "subject": e.subject, "before": e.before, "after": e.after, "reason": e.reason,
                    "hash": e.hash} for e in entries])
        return
    click.echo(table(["seq", "at (UTC)", "actor", "action", "subject", "change", "reason"],
                     [[e.seq, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.subject,
                       _change(e), e.reason] for e in entries]))
    if verify:
        click.echo(f"audit chain intact ({len(store.audit_log())} entries)")


def _change(e) -> str:
    b = e.before.get("state") if isinstance(e.before, dict) else None
    a = e.after.get("state") if isinstance(e.after, dict) else None
    return f"{b or '-'} -> {a}" if a else ""


@request.command()
@output_option
@click.pass_context
def capacity(ctx, output):
    """Recorded capacity per zone, what approved requests reserve, and what is free."""
    rows = _store(ctx).capacity()
    if output == "json":
        echo_json(rows)
        return
    click.echo(table(["operator", "zone", "vcpu free/cap", "ram_gb free/cap", "disk_gb free/cap"],
                     [[c["provider"], c["zone"], f"{c['free_vcpu']:g}/{c['vcpu']:g}",
                       f"{c['free_ram_gb']:g}/{c['ram_gb']:g}", f"{c['free_disk_gb']:g}/{c['disk_gb']:g}"]
                      for c in rows]))
