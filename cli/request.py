"""``yunshang request``: capacity requests through their lifecycle, every step in the audit log."""
from __future__ import annotations

import datetime as dt
import os

import click

from cli.common import ID, HttpUrl, catalog_option, clouds_option, day_type, echo_json, output_option, table
from yunshang import lifecycle as lc
from yunshang.errors import YunshangError


def db_option(f):
    return click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
                        help="Lifecycle store: sqlite:///PATH, postgresql://user@host:port/db or 'host=... dbname=...'. "
                             "Env: YUNSHANG_DB; "
                             "default: SQLite under ~/.local/state/yunshang/.")(f)


def identity_option(required_reason: bool = False):
    """``--os-cloud NAME``: act as the person of that clouds.yaml entry (e.g. person-center-engineer).

    The identity is what the center's Keystone says about the entry's credentials (user id,
    name, roles, department), never a name typed here. The clouds.yaml is the command's
    --clouds if it has one, else $OS_CLIENT_CONFIG_FILE, else openstacksdk's usual files.
    """
    def deco(f):
        f = click.option("--os-cloud", "os_cloud", required=True, metavar="NAME",
                         help="Act as this clouds.yaml entry's Keystone user (recorded in the audit log with its "
                              "id), e.g. person-center-engineer.")(f)
        if required_reason:
            f = click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")(f)
        return f
    return deco


def who(os_cloud: str, clouds_file: str | None = None):
    """The authenticated identity of clouds.yaml entry ``os_cloud`` (through yunshang.openstack)."""
    import os as _os

    from yunshang.openstack.identity import identity_of_cloud

    return identity_of_cloud(clouds_file or _os.environ.get("OS_CLIENT_CONFIG_FILE"), os_cloud)


def deps(ctx: click.Context, catalog_dir: str | None = None, clouds_file: str | None = None, on=None):
    from yunshang.catalog import load_catalog as _load
    from yunshang.model import Catalog
    from yunshang.usecases import Deps

    catalog = _load(catalog_dir) if catalog_dir else Catalog(root="", providers=(), departments=())
    d = Deps(_LazyStore(ctx), catalog, clouds_file, say=lambda m: click.echo(m, err=True))
    if on is not None:
        d.today = lambda: on.date()
    return d


class _LazyStore:
    """The command's store, opened (and, for SQLite, created) at its first use: a command refused
    before it (a bad document, an unknown identity, a step the person may not take) writes nothing."""

    def __init__(self, ctx: click.Context):
        self._ctx = ctx

    def __getattr__(self, name: str):
        return getattr(_store(self._ctx), name)


def _store(ctx: click.Context):
    from yunshang.store import open_store

    obj = ctx.find_root().ensure_object(dict)
    if "store" not in obj:
        obj["store"] = open_store((ctx.find_object(dict) or {}).get("db_url"))
        ctx.find_root().call_on_close(obj["store"].close)
    return obj["store"]


@click.group()
@db_option
@click.pass_context
def request(ctx: click.Context, db_url: str | None) -> None:
    """Capacity requests through their lifecycle, each step recorded.

    \b
    submit FILE -> endorse ID -> review ID -> approve|reject ID -> configure ID
      -> publish ID -> reclaim (plan) -> reclaim-confirm ID | keep ID
    \b
    Each step acts as a person of the center's Keystone (--os-cloud NAME, a
    clouds.yaml entry; `yunshang devcloud up` writes person-<name> entries):
      export OS_CLIENT_CONFIG_FILE=~/.local/share/yunshang/devcloud/clouds.yaml
      yunshang request submit examples/requests/health-vaccine.yaml --os-cloud person-health-it
      yunshang request endorse 1 --os-cloud person-health-head
      yunshang request review 1 --os-cloud person-center-reviewer
      yunshang request approve 1 --os-cloud person-center-approver-1 --reason "within ceiling"
      yunshang request configure 1 --engine sdk --clouds clouds.yaml --os-cloud person-center-engineer
      yunshang request publish 1 --os-cloud person-center-engineer
      yunshang request log --os-cloud person-center-auditor

    The audit log is append-only: the database refuses UPDATE and DELETE on it,
    entries are hash-chained (`request log --verify`), and no command edits it.
    """
    ctx.ensure_object(dict)["db_url"] = db_url


def _record_json(r) -> dict:
    from yunshang.usecases.requests import record_dict

    return record_dict(r)


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
    from yunshang.usecases.requests import department_level

    return read_request_document(path, department_level(catalog))


@request.command()
@click.argument("file", type=click.Path(dir_okay=False))
@catalog_option
@identity_option()
@output_option
@click.pass_context
def submit(ctx, file, catalog_dir, os_cloud, output):
    """Submit a department's templated request FILE (YAML: department, title, requests, probes).

    The entries use the catalog's request format (name, template, size, count,
    mlps_level, ha, dr, secret). Checked against the catalog before anything is stored.
    Only a requester of that department may submit it.
    """
    from yunshang.usecases import requests as uc

    d = deps(ctx, catalog_dir)
    doc = _read_document(file, d.catalog)
    r = uc.submit(d, who(os_cloud), doc, os.path.abspath(file))
    nxt = "endorse" if d.catalog.approval.department_head_endorses else "review"
    _show(r, output, f"submitted as request {r.id}; next: yunshang request {nxt} {r.id}")


@request.command()
@click.argument("request_id", type=ID)
@catalog_option
@identity_option()
@output_option
@click.pass_context
def endorse(ctx, request_id, catalog_dir, os_cloud, output):
    """The department head endorses request ID (first step of the approval chain)."""
    from yunshang.usecases import requests as uc

    r = uc.endorse(deps(ctx, catalog_dir), who(os_cloud), request_id)
    _show(r, output, f"endorsed request {r.id}; next: yunshang request review {r.id}")


@request.command()
@click.argument("request_id", type=ID)
@catalog_option
@clouds_option
@click.option("--live", is_flag=True, help="Also count what each operator's Placement reports as used (needs --clouds).")
@click.option("--date", "on", type=day_type(), help="Contract validity date (default: today).")
@identity_option()
@output_option
@click.pass_context
def review(ctx, request_id, catalog_dir, clouds_file, live, on, os_cloud, output):
    """Validate request ID against catalog, contracts and capacity; record placement and monthly cost.

    Capacity counted: the catalog's schedulable capacity per zone, minus what
    already-approved requests reserve in the store, and (with --live) what
    each operator's Placement reports as used, whichever is larger.
    """
    from yunshang.usecases import requests as uc

    rec, notes = uc.review(deps(ctx, catalog_dir, clouds_file, on), who(os_cloud, clouds_file), request_id,
                           live=live)
    _show(rec, output, f"reviewed request {rec.id}; next: approve or reject")
    if output != "json":
        for n in notes:
            click.echo("  " + n)


@request.command()
@click.argument("request_id", type=ID)
@catalog_option
@identity_option(required_reason=True)
@output_option
@click.pass_context
def approve(ctx, request_id, catalog_dir, os_cloud, reason, output):
    """Approve request ID, reserving its reviewed placement and contract ceiling (refused if either ran out).

    Above the catalog's approval threshold (people.yaml approval.two_approvers_above_cny_per_month)
    two different approvers are needed: the first approval reserves nothing yet. Nobody approves
    what they submitted, endorsed or reviewed.
    """
    from yunshang.usecases import requests as uc

    r = uc.approve(deps(ctx, catalog_dir), who(os_cloud), request_id, reason)
    if r.state == lc.FIRST_APPROVED:
        _show(r, output, f"first approval of request {r.id} recorded; a second approver must approve it")
    else:
        from yunshang.plans import approval_plan

        saved = approval_plan(_store(ctx), r.id)
        _show(r, output, f"approved request {r.id}, recorded plan {saved.id} (content hash {saved.content_hash[:12]}); "
                         f"next: yunshang request configure {r.id}")


@request.command()
@click.argument("request_id", type=ID)
@identity_option(required_reason=True)
@output_option
@click.pass_context
def reject(ctx, request_id, os_cloud, reason, output):
    """Reject request ID (final)."""
    from yunshang.usecases import requests as uc

    _show(uc.reject(deps(ctx), who(os_cloud), request_id, reason), output, f"rejected request {request_id}")


@request.command()
@click.argument("request_id", type=ID)
@click.option("--engine", type=click.Choice(["sdk", "pulumi"]), default="sdk", show_default=True,
              help="sdk: openstacksdk applier (no Pulumi needed); pulumi: stack up (needs the pulumi binary).")
@catalog_option
@clouds_option
@click.option("--date", "on", type=day_type(), help="Contract validity date (default: today).")
@click.option("--plan", "plan_id", type=click.IntRange(min=1, max=2**62), default=None, metavar="ID",
              help="The recorded plan to build (`request approve` records one, so does `plan --save`). "
                   "Default: the latest recorded plan covering the request's department, the one "
                   "`stack up DEPT` and `tenant apply DEPT` build by default.")
@identity_option()
@output_option
@click.pass_context
def configure(ctx, request_id, engine, catalog_dir, clouds_file, on, plan_id, os_cloud, output):
    """Apply the tenant(s) of approved request ID through the chosen engine, then record it.

    The tenants are built from a recorded plan (--plan ID, default the latest covering the
    department), never from a new placement. Refused (exit 2, nothing applied) when no plan
    covers the department, when the plan's contracts are not valid on --date or the catalog
    changed under it, or when it does not place every approved request of the department as
    it was approved (naming what differs)."""
    from yunshang.usecases import requests as uc

    if engine == "sdk" and not clouds_file:
        raise click.UsageError("configure --engine sdk needs --clouds FILE (clouds.yaml with the operators)")
    r = uc.configure(deps(ctx, catalog_dir, clouds_file, on), who(os_cloud, clouds_file), request_id, engine,
                     plan_id=plan_id)
    used = next((e.after.get("plan") for e in reversed(_store(ctx).audit_log(subject=f"request:{r.id}"))
                 if e.action == "configure"), None) or {}
    _show(r, output, f"configured request {r.id} through {engine} from plan {used.get('id')} (content hash "
                     f"{str(used.get('content_hash', ''))[:12]}); next: yunshang request publish {r.id}")


@request.command()
@click.argument("request_id", type=ID)
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False),
              help="Catalog: the department's own probes are added to the request's.")
@identity_option()
@output_option
@click.pass_context
def publish(ctx, request_id, catalog_dir, os_cloud, output):
    """Mark request ID in service, recording the SLA probe targets the exporter will probe."""
    from yunshang.usecases import requests as uc

    r = uc.publish(deps(ctx, catalog_dir), who(os_cloud), request_id, with_catalog_probes=bool(catalog_dir))
    n = len(next((e.after.get("probes", []) for e in reversed(_store(ctx).audit_log(subject=f"request:{r.id}"))
                  if e.action == "publish"), []))
    _show(r, output, f"published request {r.id} with {n} probe target(s)")


@request.command(name="reclaim")
@catalog_option
@click.option("--idle-days", type=click.IntRange(1), default=None,
              help="Also propose tenants whose servers were idle for N days by the exporter's data.")
@click.option("--prometheus", type=HttpUrl(), metavar="URL", help="Prometheus base URL (needed with --idle-days).")
@click.option("--date", "on", type=day_type(), help="Evaluation date (default: today).")
@click.option("--mark", is_flag=True, help="Move the candidates to reclaim-planned (audited). Nothing is deleted.")
@click.option("--os-cloud", "os_cloud", metavar="NAME",
              help="Who reads (required) and, with --mark, marks: a clouds.yaml entry (marking: an engineer's, "
                   "e.g. person-center-engineer); a department's people see only their department's candidates.")
@output_option
@click.pass_context
def reclaim_plan(ctx, catalog_dir, idle_days, prometheus, on, mark, os_cloud, output):
    """Propose reclaims: contract ended, or servers idle N days. A reviewed plan, never a silent delete.

    \b
    Example:  yunshang request reclaim --catalog DIR --os-cloud person-center-engineer [--mark]
    Then, per request:  reclaim-confirm ID --os-cloud --reason   (or keep ID --os-cloud --reason)
    """
    from yunshang.usecases import requests as uc

    d = deps(ctx, catalog_dir)
    day = on.date() if on else dt.date.today()
    idle = {}
    if idle_days:
        if not prometheus:
            raise click.UsageError("--idle-days needs --prometheus URL (the exporter's data)")
        at = dt.datetime.combine(day, dt.time(), dt.timezone.utc) if on else None
        idle = idle_tenants(prometheus, idle_days, at)
    if mark and not os_cloud:
        raise click.UsageError("--mark needs --os-cloud NAME (an engineer)")
    if not os_cloud:
        raise click.UsageError("reclaim needs --os-cloud NAME: the candidates are departments' requests, read as a "
                               "person of the center's Keystone (e.g. --os-cloud person-center-engineer)")
    candidates = uc.reclaim_plan(d, who(os_cloud), day, idle, idle_days or 0, mark=mark)
    if output == "json":
        echo_json([c.__dict__ for c in candidates])
        return
    if not candidates:
        click.echo("nothing to reclaim")
        return
    click.echo(table(["request", "department", "state", "reasons"],
                     [[c.request_id, c.department, c.state, "; ".join(c.reasons)] for c in candidates]))
    click.echo("marked reclaim-planned" if mark else "plan only: re-run with --mark --os-cloud NAME to record it")


@request.command()
@click.argument("request_id", type=ID)
@click.option("--prometheus", type=HttpUrl(), required=True, metavar="URL", envvar="YUNSHANG_PROMETHEUS",
              help="Prometheus scraping the exporters: the request's probes must have data there.")
@click.option("--within-days", type=click.IntRange(1), default=1, show_default=True,
              help="A probe counts as monitored when it has a sample this recent.")
@identity_option()
@output_option
@click.pass_context
def monitor(ctx, request_id, prometheus, within_days, os_cloud, output):
    """Mark published request ID monitored, once every one of its probe targets has data in Prometheus."""
    from yunshang.usecases import requests as uc

    r, seen = uc.monitor(deps(ctx), who(os_cloud), request_id, prometheus, within_days)
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
@click.argument("request_id", type=ID)
@identity_option(required_reason=True)
@output_option
@click.pass_context
def reclaim_confirm(ctx, request_id, os_cloud, reason, output):
    """Confirm a planned reclaim: releases the reservation and stops the bill. The tenant itself is
    removed separately (yunshang tenant destroy), so nothing disappears without a person doing it."""
    from yunshang.usecases import requests as uc

    r = uc.reclaim(deps(ctx), who(os_cloud), request_id, reason)
    _show(r, output, f"reclaimed request {r.id}; remove the tenant with: yunshang tenant destroy {r.department} "
                     f"--operator {' / '.join(sorted({p.provider for p in r.placements}))} (it lists and asks; --yes in scripts)")


@request.command()
@click.argument("request_id", type=ID)
@identity_option(required_reason=True)
@output_option
@click.pass_context
def keep(ctx, request_id, os_cloud, reason, output):
    """Cancel a planned reclaim: request ID stays published."""
    from yunshang.usecases import requests as uc

    _show(uc.keep(deps(ctx), who(os_cloud), request_id, reason), output, f"kept request {request_id}")


@request.command(name="list")
@click.option("--state", type=click.Choice(lc.STATES))
@click.option("--department")
@identity_option()
@output_option
@click.pass_context
def list_(ctx, state, department, os_cloud, output):
    """List requests with their state and monthly cost (a department's people: only their department's)."""
    from yunshang.usecases import requests as uc

    recs = uc.list_requests(deps(ctx), who(os_cloud), state=state, department=department)
    if output == "json":
        echo_json([_record_json(r) for r in recs])
        return
    click.echo(table(["id", "department", "title", "state", "CNY/month", "updated"],
                     [[r.id, r.department, r.title, r.state,
                       f"{sum(p.monthly_cost_cny for p in r.placements):,.2f}",
                       r.updated_at.strftime("%Y-%m-%d %H:%M")] for r in recs]))


@request.command()
@click.argument("request_id", type=ID)
@identity_option()
@output_option
@click.pass_context
def show(ctx, request_id, os_cloud, output):
    """Show request ID with its placement."""
    from yunshang.usecases import requests as uc

    _show(uc.show(deps(ctx), who(os_cloud), request_id), output)


@request.command()
@click.option("--request", "request_id", type=ID, help="Only this request's entries.")
@click.option("--verify", is_flag=True, help="Recompute the hash chain; exit 1 if any entry was altered.")
@identity_option()
@output_option
@click.pass_context
def log(ctx, request_id, verify, os_cloud, output):
    """The audit log (read-only; auditors and engineers): who did what, when, before/after, why."""
    from yunshang.usecases import requests as uc

    entries, (ok, bad, n) = uc.audit_log(deps(ctx), who(os_cloud), request_id, verify)
    if verify and not ok:
        raise YunshangError(f"audit log chain broken at entry {bad} (of {n} checked): it was altered "
                            "outside the tool")
    if output == "json":
        echo_json([uc.audit_dict(e) for e in entries])
        return
    click.echo(table(["seq", "at (UTC)", "actor", "action", "subject", "change", "reason"],
                     [[e.seq, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.subject,
                       _change(e), e.reason] for e in entries]))
    if verify:
        click.echo(f"audit chain intact ({n} entries)")


def _change(e) -> str:
    b = e.before.get("state") if isinstance(e.before, dict) else None
    a = e.after.get("state") if isinstance(e.after, dict) else None
    return f"{b or '-'} -> {a}" if a else ""


@request.command()
@identity_option()
@output_option
@click.pass_context
def capacity(ctx, os_cloud, output):
    """Recorded capacity per zone, what approved requests reserve, and what is free."""
    from yunshang.usecases import requests as uc

    rows = uc.capacity(deps(ctx), who(os_cloud))
    if output == "json":
        echo_json(rows)
        return
    click.echo(table(["operator", "zone", "vcpu free/cap", "ram_gb free/cap", "disk_gb free/cap"],
                     [[c["provider"], c["zone"], f"{c['free_vcpu']:g}/{c['vcpu']:g}",
                       f"{c['free_ram_gb']:g}/{c['ram_gb']:g}", f"{c['free_disk_gb']:g}/{c['disk_gb']:g}"]
                      for c in rows]))
