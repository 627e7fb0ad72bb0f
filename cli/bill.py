"""``yunshang bill``: the monthly bill and SLA evidence per contract (department x operator)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os

import click

from cli.common import catalog_option, echo_json, load_catalog, table
from yunshang import billing as b
from yunshang.errors import NotFound

PROBE_QUERY = 'yunshang_probe_success{department!=""}'


def evidence_from_prometheus(prometheus_url: str, catalog, month: str, now: dt.datetime | None = None) -> dict[str, b.SlaEvidence]:
    """Per contract: the month's probe samples read back from Prometheus (``yunshang_probe_success``).

    A series labelled ``contract=""`` counts against the department's primary contract with
    that operator. Every raw sample stored is one probe result (1 = up), read with its own
    timestamp (no step resampling); maintenance is excluded by ``billing.evidence_from_samples``.
    """
    from yunshang.promread import PrometheusClient
    from yunshang.sla import ProbeSample

    start, end = b.parse_month(month)
    end = min(end, now or dt.datetime.now(dt.timezone.utc))
    if end <= start:
        return {}
    by_contract: dict[str, dict[str, list]] = {}
    for s in PrometheusClient(prometheus_url).raw_samples(PROBE_QUERY, start, end):
        dept, op, cid = s.label("department"), s.label("operator"), s.label("contract")
        if not cid:
            try:
                cid = next(c.id for c in catalog.department(dept).contracts
                           if c.provider == op and c.role == "primary")
            except (KeyError, StopIteration):
                continue
        samples = [ProbeSample(t, v >= 1.0) for t, v in s.points]
        by_contract.setdefault(cid, {})[f"{op}/{s.label('probe')}"] = samples
    out = {}
    for cid, probes in by_contract.items():
        op = next((c.provider for d in catalog.departments for c in d.contracts if c.id == cid), None)
        if op is None:
            continue
        prov = catalog.provider(op)
        out[cid] = b.evidence_from_samples(probes, prov.maintenance, prov.sla.availability, start)
    return out


@click.command()
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month (UTC), e.g. 2026-11.")
@click.option("--department", metavar="NAME", help="Only this department.")
@click.option("--output", "-o", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True, help="table for people, json/csv for machines, html: a statement per department.")
@click.option("--out", "out_path", type=click.Path(), metavar="PATH",
              help="Write here instead of stdout. html without --department: a directory, one page per department.")
@catalog_option
@click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
              help="Lifecycle store holding what was configured/reclaimed when. Env: YUNSHANG_DB.")
@click.option("--prometheus", metavar="URL", envvar="YUNSHANG_PROMETHEUS",
              help="Prometheus holding the exporters' probe data (SLA attainment). Without it: no SLA evidence.")
@click.option("--projected", is_flag=True,
              help="The current month's forecast: what is held now charged to the month's end (marked projected).")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
              metavar="UTC-TIME", help="Take the bill at this time (UTC) instead of now.")
def bill(month, department, output, out_path, catalog_dir, db_url, prometheus, projected, at):
    """Monthly bill per contract: resources held (prorated to the second), SLA attainment, credit, ceiling use.

    A month that is not over is billed to date: charges up to now (the statement says "to <time>");
    --projected gives the forecast to the month's end instead, marked "projected": true.

    \b
    Example:
      yunshang bill --month 2026-11 --prometheus http://127.0.0.1:9090
      yunshang bill --month 2026-11 --department health -o html --out health-2026-11.html
      yunshang bill --month 2026-12 --projected -o json
    The operators' totals are printed under the table: they equal the sum of the departments' bills.
    """
    from yunshang.billing_html import statement_html
    from yunshang.store import open_store

    now = at.replace(tzinfo=dt.timezone.utc) if at else dt.datetime.now(dt.timezone.utc)
    _, month_end, to = b.billing_period(month, now, projected)
    projection = projected and now < month_end
    catalog = load_catalog(catalog_dir)
    if department:
        try:
            catalog.department(department)
        except KeyError:
            raise NotFound(f"unknown department {department!r} in catalog {catalog_dir}") from None
    with open_store(db_url) as store:
        held = store.holdings()
    evidence = evidence_from_prometheus(prometheus, catalog, month, now) if prometheus else {}
    bills = b.bills(catalog, held, month, evidence=evidence, department=department, now=now, projected=projected)
    if output == "html":
        issued = now
        if department:
            _emit(statement_html(bills[0], catalog, issued), out_path)
            return
        if not out_path:
            raise click.UsageError("-o html for every department needs --out DIR (one page per department)")
        os.makedirs(out_path, exist_ok=True)
        for bl in bills:
            with open(os.path.join(out_path, f"{bl.department}-{month}.html"), "w", encoding="utf-8") as fh:
                fh.write(statement_html(bl, catalog, issued))
        click.echo(f"wrote {len(bills)} statements to {out_path}", err=True)
        return
    if output == "json":
        data = {"month": month, "to": to.isoformat(), "projected": projection,
                "departments": [b.bill_to_dict(x) for x in bills],
                "operators": [{"operator": t.operator, "gross_cny": t.gross_fen / 100, "credit_cny": t.credit_fen / 100,
                               "net_cny": t.net_cny, "contracts": t.contracts} for t in b.operator_totals(bills)]}
        if out_path:
            import json

            _emit(json.dumps(data, indent=2, ensure_ascii=False), out_path)
        else:
            echo_json(data)
        return
    if output == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(b.CSV_HEADER)
        w.writerows(b.csv_rows(bills))
        _emit(buf.getvalue(), out_path)
        return
    rows = []
    for bl in bills:
        for c in bl.contracts:
            rows.append([bl.department, c.contract, c.operator, c.role, f"{c.gross_cny:,.2f}",
                         f"{c.sla.availability_ratio * 100:.3f}%" if c.sla.availability_ratio is not None else "no data",
                         f"{c.credit_cny:,.2f}", f"{c.net_cny:,.2f}",
                         f"{c.ceiling_used_ratio * 100:.1f}%" + (" OVER" if c.over_ceiling else "")])
    head = (f"Bill {month}, PROJECTED to month end {to:%Y-%m-%d %H:%M} UTC (forecast)\n\n" if projection
            else f"Bill {month}, to {to:%Y-%m-%d %H:%M} UTC" + (" (month not over)" if to < month_end else "") + "\n\n")
    text = head + table(["department", "contract", "operator", "role", "charges CNY", "availability", "credit CNY",
                  "due CNY", "ceiling used"], rows)
    text += "\n\n" + table(["operator", "charges CNY", "credits CNY", "due CNY", "contracts"],
                           [[t.operator, f"{t.gross_fen / 100:,.2f}", f"{t.credit_fen / 100:,.2f}",
                             f"{t.net_cny:,.2f}", t.contracts] for t in b.operator_totals(bills)])
    _emit(text + "\n", out_path)


def _emit(text: str, out_path: str | None) -> None:
    if out_path:
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {out_path}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))
