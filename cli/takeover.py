"""``yunshang takeover``: evaluate the takeover triggers, plan the move to the backup operators, drill it."""
from __future__ import annotations

import datetime as dt

import click

from cli.common import (
    HttpUrl, OutPath, catalog_option, clouds_option, echo_json, load_catalog, moment_type, output_option, table,
)
from yunshang import takeover as tk
from yunshang.errors import NotFound
from yunshang.usecases.drill import affected_from_store  # noqa: F401  (re-exported)

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
    ends: list[dt.datetime] = []
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
@clouds_option
@click.option("--os-cloud", "os_cloud", metavar="NAME",
              help="With --db: who reads the store, a center person's clouds.yaml entry (e.g. "
                   "person-center-engineer); a department's people may not.")
@output_option
def plan(operator, catalog_dir, db_url, prometheus, terminated, breach_months, force, parallel, at, clouds_file,
         os_cloud, output):
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
    if db_url and not os_cloud:
        raise click.UsageError("--db needs --os-cloud NAME: the store holds the departments' requests, read as a "
                               "person of the center (e.g. person-center-engineer)")
    up, breached = read_trigger_inputs(prometheus, operator, now, breach_months) if prometheus else ([], {})
    triggers = tk.evaluate_triggers(catalog, operator, now, up, breached, breach_months, terminated)
    from yunshang.usecases import Deps
    from yunshang.usecases.drill import plan as plan_takeover

    if db_url:
        from cli.request import who
        from yunshang.store import open_store

        me = who(os_cloud, clouds_file)
        with open_store(db_url) as store:
            result = plan_takeover(Deps(store, catalog), me, operator, now, triggers, force=force, parallel=parallel)
    else:
        result = plan_takeover(Deps(None, catalog), None, operator, now, triggers, force=force, parallel=parallel)
    if output == "json":
        echo_json(tk.plan_to_dict(result))
    else:
        _print_plan(result)


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
    from cli.request import who
    from yunshang.store import open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.drill import drill as run_drill

    if not clouds_file:
        raise click.UsageError("drill needs --clouds FILE (the devcloud's clouds.yaml)")
    me = who(os_cloud, clouds_file)              # the person (Keystone) before anything is read
    catalog = load_catalog(catalog_dir)
    with open_store(db_url) as store:
        evidence = run_drill(Deps(store, catalog, clouds_file, say=lambda m: click.echo(m, err=True)), me,
                             from_op, to_op, devcloud_dir=devcloud_dir, evidence_path=evidence_path,
                             catalog_name=catalog_dir)
    if output == "json":
        echo_json(evidence)
    else:
        click.echo(table(["step", "seconds", "verified"], [[s["step"], f"{s['seconds']:.1f}", s.get("verified", "")]
                                                           for s in evidence["steps"]]))
        click.echo(f"total {evidence['total_seconds']:.1f} s against an RTO of {evidence['rto_seconds'] / 60:.0f} min; "
                   f"evidence: {evidence['evidence']}")
