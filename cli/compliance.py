"""``yunshang compliance``: graded-protection (MLPS) checks of live tenants, as evidence."""
from __future__ import annotations

import datetime as dt
import json

import click

from cli.common import OutPath, catalog_option, clouds_option, day_type, echo_json, load_catalog, table
from yunshang import compliance as c
from yunshang.errors import NotFound


@click.group()
def compliance() -> None:
    """Graded-protection (MLPS) checks of the departments' live tenants.

    \b
    Example:
      yunshang compliance check --clouds clouds.yaml --department health
      yunshang compliance check --clouds clouds.yaml -o json --out evidence-2026-11-26.json
    Exit status 1 when a required check fails; the report says what was found and how to fix it.
    """


@compliance.command()
@catalog_option
@clouds_option
@click.option("--department", "departments", multiple=True, metavar="NAME",
              help="Only these departments (repeatable; default: all in the catalog).")
@click.option("--operator", "operators", multiple=True, metavar="OP", help="Only these operators (repeatable).")
@click.option("--date", "on", type=day_type(), help="Contract validity date (default: today).")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--out", "out_path", type=OutPath(), help="Also write the JSON evidence here.")
def check(catalog_dir, clouds_file, departments, operators, on, output, out_path):
    """Check each department's tenants against the checks its MLPS level requires (reads only)."""
    from yunshang.openstack.compliance import read_department

    catalog = load_catalog(catalog_dir)
    names = list(departments) or [d.name for d in catalog.departments]
    for n in names:
        try:
            catalog.department(n)
        except KeyError:
            raise NotFound(f"unknown department {n!r} in catalog {catalog_dir}") from None
    day = on.date() if on else dt.date.today()
    reports = []
    for n in names:
        views = read_department(catalog, n, clouds_file, list(operators) or None)
        if all(v is None for v in views.values()):
            continue
        reports.append(c.check_department(catalog, n, views, day, dt.datetime.now(dt.timezone.utc)))
    evidence = {"checked_at": dt.datetime.now(dt.timezone.utc).isoformat(), "catalog": catalog_dir,
                "clouds": clouds_file, "date": day.isoformat(), "reports": [r.as_dict() for r in reports]}
    if out_path:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump(evidence, fh, indent=2, ensure_ascii=False)
    if output == "json":
        echo_json(evidence)
    else:
        rows = []
        for r in reports:
            for x in r.results:
                rows.append([r.department, x.operator, x.id, x.status.upper() if x.status == c.FAIL else x.status,
                             "; ".join(x.found)[:110]])
        click.echo(table(["department", "operator", "check", "result", "found"], rows))
        for r in reports:
            for x in r.failed:
                click.echo(f"fix {r.department}/{x.operator} {x.id}: {x.fix}")
        click.echo(f"{len(reports)} department(s) with tenants checked; "
                   f"{sum(1 for r in reports if r.compliant)} compliant")
    failed = [r.department for r in reports if not r.compliant]
    if failed:
        raise c.NotCompliant(f"not compliant: {', '.join(failed)}")
