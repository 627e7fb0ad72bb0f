"""``yunshang report``: the monthly report per site and tier, for a higher authority."""
from __future__ import annotations

import datetime as dt
import json
import os

import click

from cli.common import HttpUrl, catalog_option, clouds_option, echo_json, load_catalog, table
from yunshang.errors import InputInvalid, NotFound, Problem


@click.command()
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month (UTC), e.g. 2026-11.")
@click.option("--site", metavar="SITE", help="Only this site and the sites below it (default: the whole tree).")
@click.option("--output", "-o", type=click.Choice(["table", "json", "html"]), default="table", show_default=True,
              help="table for people at a terminal, json for machines, html: one page with charts.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), metavar="PATH", help="Write here instead of stdout.")
@catalog_option
@click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
              help="Lifecycle store (what was configured/reclaimed when: spend and capacity use). Env: YUNSHANG_DB.")
@click.option("--prometheus", type=HttpUrl(), metavar="URL", envvar="YUNSHANG_PROMETHEUS",
              help="Prometheus with the exporters' probe data (SLA per contract). Without it: no SLA evidence.")
@click.option("--compliance", "compliance_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="MLPS evidence written by `yunshang compliance check --out FILE`. Without it: 'unchecked'.")
@click.option("--migration-state", "migration_dirs", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="A migration's state directory (`yunshang migrate run --state-dir`); repeat for several.")
@click.option("--projected", is_flag=True, help="The current month charged to its end (forecast), as `bill --projected`.")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
              metavar="UTC-TIME", help="Take the report at this time (UTC) instead of now.")
@clouds_option
@click.option("--os-cloud", "os_cloud", metavar="NAME",
              help="Read the store as this clouds.yaml entry's Keystone person (required): a center role "
                   "(e.g. person-center-auditor); a department's people may not read every department's spend.")
def report(month, site, output, out_path, catalog_dir, db_url, prometheus, compliance_file, migration_dirs,
           projected, at, clouds_file, os_cloud):
    """The monthly report per site and tier: each site with everything below it.

    \b
    Per site (city, counties, townships; sites.yaml) and per tier:
      capacity    schedulable vCPU/RAM/disk of the zones there, and peak and mean
                  of what configured requests held over the month
      spend       what `bill` charges its departments, per department and
                  operator, against the site's budget; what `plan` places per month
      SLA         per contract (from --prometheus, as `bill`)
      MLPS        per department, from --compliance evidence ("unchecked" without)
      migration   hosts surveyed / migrated / cut over (--migration-state)
    The numbers are `bill`'s and `plan`'s (the plan as of the month's first day).

    \b
    Examples:
      yunshang report --month 2026-11 --os-cloud person-center-auditor
      yunshang report --month 2026-11 --site taojiang -o json --os-cloud person-center-auditor
      yunshang report --month 2026-11 -o html --out report-2026-11.html --os-cloud person-center-auditor
    """
    from cli.bill import evidence_from_prometheus
    from yunshang import billing as b
    from yunshang import report as rp
    from yunshang.placement import place
    from yunshang.sites import tree_of
    from cli.request import who
    from yunshang.store import open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.bills import report_holdings

    now = at.replace(tzinfo=dt.timezone.utc) if at else dt.datetime.now(dt.timezone.utc)
    start, month_end, to = b.billing_period(month, now, projected)
    catalog = load_catalog(catalog_dir)
    tree = tree_of(catalog)
    if site and site not in tree.sites:
        raise NotFound(f"--site {site}: no such site (the catalog has: {', '.join(sorted(tree.sites))})")
    if not os_cloud:
        raise click.UsageError("report needs --os-cloud NAME: it reads every department's holdings, as a center "
                               "person of the Keystone (e.g. --os-cloud person-center-auditor)")
    with open_store(db_url) as store:
        held = report_holdings(Deps(store, catalog), who(os_cloud, clouds_file))
    evidence = evidence_from_prometheus(prometheus, catalog, month, now) if prometheus else {}
    bills = b.bills(catalog, held, month, evidence=evidence, now=now, projected=projected)
    plan = place(catalog, start.date())
    data = rp.build_report(catalog, month, bills, held, plan, to=to, site=site or "",
                           compliance=_compliance(compliance_file), migration=_migration(migration_dirs),
                           projected=projected and now < month_end)
    if output == "json":
        if out_path:
            _write(out_path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        else:
            echo_json(data)
        return
    if output == "html":
        page = rp.report_html(data, now)
        if out_path:
            _write(out_path, page)
        else:
            click.echo(page)
        return
    rows = []
    for s in data["sites"]:
        c, sp = s["capacity"], s["spend"]
        rows.append(["  " * s["depth"] + s["site"], s["tier"],
                     *(f"{_p(c[r]['peak_ratio'])}/{_p(c[r]['mean_ratio'])}" for r in ("vcpu", "ram_gb", "disk_gb")),
                     f"{sp['net_cny']:,.2f}", f"{sp['planned_monthly_cny']:,.2f}",
                     "" if sp["budget_cny_per_month"] is None else f"{sp['budget_cny_per_month']:,.0f}",
                     f"{s['sla']['breached']}/{s['sla']['contracts']}",
                     f"{s['compliance']['compliant']}/{s['compliance']['not-compliant']}/{s['compliance']['unchecked']}",
                     f"{s['migration']['surveyed']}/{s['migration']['migrated']}/{s['migration']['cut_over']}"])
    text = (f"Report {month} for {data['site']} and below, charges to {to:%Y-%m-%d %H:%M} UTC, "
            f"plan as of {data['plan_date']}\n\n"
            + table(["site", "tier", "vcpu peak/mean", "ram peak/mean", "disk peak/mean", "spend CNY",
                     "placed CNY/month", "budget", "SLA breached", "MLPS ok/not/unchecked",
                     "migration surveyed/migrated/cut over"], rows)
            + "\n\n" + table(["tier", "sites", "departments", "spend CNY", "placed CNY/month"],
                             [[t["tier"], len(t["sites"]), t["departments"], f"{t['net_cny']:,.2f}",
                               f"{t['planned_monthly_cny']:,.2f}"] for t in data["tiers"]]) + "\n")
    if out_path:
        _write(out_path, text)
    else:
        click.echo(text, nl=False)


def _p(r):
    return "-" if r is None else f"{r * 100:.1f}%"


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _compliance(path: str | None) -> dict:
    """department -> its latest report in a `compliance check --out` evidence file."""
    if not path:
        return {}
    try:
        from yunshang.yamlload import load_json

        doc = load_json(path)
        reports = doc["reports"]
        out = {}
        for r in reports:
            if not isinstance(r, dict) or not isinstance(r.get("department"), str) or \
                    not isinstance(r.get("compliant"), bool):
                raise ValueError("each report needs department (text) and compliant (true/false)")
            out[r["department"]] = r
        return out
    except OSError as exc:
        raise NotFound(f"--compliance {path}: cannot read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputInvalid([Problem(path, "reports", f"expected the evidence of `yunshang compliance check --out` "
                                                     f"({exc})")]) from None


def _migration(dirs: tuple[str, ...]) -> list:
    from cli.migrate import _stored_plan
    from yunshang.migration.state import StateStore, new_state
    from yunshang.report import MigrationHost

    out = []
    for d in dirs:
        if not os.path.isdir(d):
            raise NotFound(f"--migration-state {d}: no such directory")
        plan = _stored_plan(d)
        store = StateStore(d)
        state = store.load() if store.exists() else new_state(plan)
        for h in plan.survey.hosts:
            hs = state.host(h.hostname)
            out.append(MigrationHost(h.hostname, h.department, hs.status, hs.step("cutover").status == "done"))
    return out
