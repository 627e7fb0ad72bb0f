"""``yunshang bill``: the monthly bill and SLA evidence per contract (department x operator)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os

import click

from cli.common import (
    HttpUrl, OutPath, catalog_option, clouds_option, echo_json, load_catalog, moment_type, output_option, table,
)
from yunshang import billing as b

from yunshang.usecases.bills import PROBE_QUERY, evidence_from_prometheus  # noqa: F401  (re-exported)


class _ShowByDefault(click.Group):
    """``yunshang bill --month M`` is ``yunshang bill show --month M``; ``bill reconcile`` is the check."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowByDefault)
def bill() -> None:
    """Monthly bills per contract (`bill --month M`, same as `bill show`), and the check of an operator's invoice.

    \b
    Examples:
      yunshang bill --month 2026-11 --prometheus http://127.0.0.1:9090 --os-cloud person-center-auditor
      yunshang bill --month 2026-12 --projected -o json --os-cloud person-health-head    # health's bill only
      yunshang bill reconcile --month 2026-11 --invoice unicom-2026-11.csv --os-cloud person-center-auditor
    \b
    Every bill is read as a person of the center's Keystone (--os-cloud, a clouds.yaml entry): a
    department's requester or head sees only that department's bill, a center role every one.
    """


_AT = click.option("--at", "at", type=moment_type(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
                   metavar="UTC-TIME", help="Take the bill at this time (UTC) instead of now.")
_DB = click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL",
                   help="Lifecycle store holding what was configured/reclaimed when. Env: YUNSHANG_DB.")
_WHO = click.option("--os-cloud", "os_cloud", metavar="NAME",
                    help="Read the bills as this clouds.yaml entry's Keystone person (required): a department's "
                         "people get only their department's bill, center roles every department's "
                         "(e.g. person-center-auditor).")


def _require_person(os_cloud: str | None, command: str) -> None:
    """Bills are department data: a person must be named (checked after the arguments are)."""
    if not os_cloud:
        raise click.UsageError(f"{command} needs --os-cloud NAME: bills are department data, read as a person of "
                               "the center's Keystone (e.g. --os-cloud person-center-auditor)")


def _person(os_cloud: str, clouds_file: str | None):
    """The authenticated person of clouds.yaml entry ``os_cloud`` (what the center's Keystone says)."""
    from cli.request import who

    return who(os_cloud, clouds_file)


_PROM = click.option("--prometheus", type=HttpUrl(), metavar="URL", envvar="YUNSHANG_PROMETHEUS",
                     help="Prometheus holding the exporters' probe data (SLA attainment). Without it: no SLA evidence.")


@bill.command("show")
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month (UTC), e.g. 2026-11.")
@click.option("--department", metavar="NAME", help="Only this department.")
@click.option("--output", "-o", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True, help="table for people, json/csv for machines, html: a statement per department.")
@click.option("--out", "out_path", type=OutPath("any"), metavar="PATH",
              help="Write here instead of stdout. html without --department: a directory, one page per department.")
@catalog_option
@_DB
@_PROM
@click.option("--projected", is_flag=True,
              help="The current month's forecast: what is held now charged to the month's end (marked projected).")
@_AT
@clouds_option
@_WHO
def show(month, department, output, out_path, catalog_dir, db_url, prometheus, projected, at, clouds_file, os_cloud):
    """Monthly bill per contract: resources held (prorated to the second), SLA attainment, credit, ceiling use.

    A month that is not over is billed to date: charges up to now (the statement says "to <time>");
    --projected gives the forecast to the month's end instead, marked "projected": true.

    \b
    Example:
      yunshang bill --month 2026-11 --prometheus http://127.0.0.1:9090 --os-cloud person-center-auditor
      yunshang bill --month 2026-11 --department health -o html --out health-2026-11.html \\
          --os-cloud person-health-head
      yunshang bill --month 2026-12 --projected -o json --os-cloud person-center-auditor
    The operators' totals are printed under the table: they equal the sum of the departments' bills.
    """
    from yunshang.billing_html import statement_html
    from yunshang.store import open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.bills import month_bills

    now = at.replace(tzinfo=dt.timezone.utc) if at else dt.datetime.now(dt.timezone.utc)
    _, month_end, to = b.billing_period(month, now, projected)
    projection = projected and now < month_end
    catalog = load_catalog(catalog_dir)
    _require_person(os_cloud, "bill")
    with open_store(db_url) as store:
        # a department's person: only its department's bill; a center role: every department's
        me = _person(os_cloud, clouds_file)
        bills = month_bills(Deps(store, catalog), me, month, department, prometheus, now=now, projected=projected)
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


@bill.command("reconcile")
@click.option("--month", required=True, metavar="YYYY-MM", help="Calendar month (UTC) the invoice is for.")
@click.option("--invoice", "invoice_path", required=True, type=click.Path(dir_okay=False), metavar="FILE.csv",
              help="The operator's invoice: CSV with a header contract,resource,quantity,amount "
                   "(resource: vcpu, ram_gb, disk_gb, floating_ip, sla_credit; quantity in unit-hours; amount CNY).")
@click.option("--operator", metavar="OP", help="The invoice's operator: its contracts missing from the invoice are "
                                               "listed too.")
@click.option("--tolerance", type=click.FloatRange(0, 1e6), default=1.0, show_default=True, metavar="CNY",
              help="Differences up to this amount (per contract and resource) are not listed.")
@output_option
@catalog_option
@_DB
@_PROM
@_AT
@clouds_option
@_WHO
def reconcile(month, invoice_path, operator, tolerance, output, catalog_dir, db_url, prometheus, at, clouds_file,
              os_cloud):
    """Three-way check: what yunshang metered, the contract prices, and the operator's own invoice.

    For every contract and resource on the invoice (and, with --operator, every contract of that
    operator that held something): the unit-hours yunshang metered at the contract's unit price,
    against the invoiced quantity and amount. Every difference above --tolerance is listed, per
    contract, split into its quantity part and its price part; SLA credits are compared too.

    \b
    Example:
      yunshang bill reconcile --month 2026-11 --invoice unicom-2026-11.csv --operator unicom \\
          --os-cloud person-center-auditor
      yunshang bill reconcile --month 2026-11 --invoice unicom-2026-11.csv -o json --os-cloud person-center-auditor
    \b
    Invoice CSV (quantity: unit-hours in the month; amount: CNY):
      contract,resource,quantity,amount
      WJ-2025-01,vcpu,2880,112.00
      WJ-2025-01,sla_credit,0,-16.80
    """
    from yunshang.store import open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.bills import reconcile_invoice

    now = at.replace(tzinfo=dt.timezone.utc) if at else dt.datetime.now(dt.timezone.utc)
    b.billing_period(month, now)
    invoice = b.parse_invoice_csv(_read_invoice(invoice_path), invoice_path)     # refused before anything is read
    catalog = load_catalog(catalog_dir)
    _require_person(os_cloud, "bill reconcile")
    with open_store(db_url) as store:
        me = _person(os_cloud, clouds_file)      # a center role: the invoice covers everyone
        rec = reconcile_invoice(Deps(store, catalog), me, month, invoice, operator=operator,
                                tolerance_fen=int(round(tolerance * 100)), prometheus_url=prometheus, now=now)
    if output == "json":
        echo_json(b.reconciliation_to_dict(rec))
        return
    _, month_end, to = b.billing_period(month, now)
    lines = [f"Reconciliation {month}" + (f", metered to {to:%Y-%m-%d %H:%M} UTC (month not over)" if to < month_end
                                         else "") + f"; tolerance {tolerance:,.2f} CNY"]
    rows = [[c.contract, c.department or "?", c.operator or "?", f"{c.expected_fen / 100:,.2f}",
             f"{c.invoiced_fen / 100:,.2f}", f"{c.difference_fen / 100:+,.2f}",
             "ok" if not c.differences else f"{len(c.differences)} difference(s)"] for c in rec.contracts]
    lines.append(table(["contract", "department", "operator", "expected CNY", "invoiced CNY", "difference", ""], rows))
    for c in rec.contracts:
        if c.differences:
            lines.append(f"\n{c.contract} ({c.department or 'unknown contract'}, {c.operator or '?'}):")
            lines.append(table(["resource", "metered", "invoiced", "expected CNY", "invoiced CNY", "difference", "why"],
                               [[d.resource, f"{d.metered_quantity:,.2f}", f"{d.invoiced_quantity:,.2f}",
                                 f"{d.expected_fen / 100:,.2f}", f"{d.invoiced_fen / 100:,.2f}",
                                 f"{d.difference_fen / 100:+,.2f}", d.why] for d in c.differences]))
    lines.append("\nreconciled: every line within tolerance" if rec.reconciled
                 else f"\nNOT reconciled: {sum(len(c.differences) for c in rec.contracts)} difference(s) above tolerance")
    click.echo("\n".join(lines))


def _read_invoice(path: str) -> str:
    """The invoice file's text: bounded in size, UTF-8 — else one clear refusal (exit 2)."""
    from yunshang.errors import InputInvalid, Problem

    try:
        with open(path, "rb") as fh:
            data = fh.read(b.INVOICE_MAX_BYTES + 1)
    except OSError as exc:
        raise InputInvalid([Problem(path, "", f"cannot read: {exc.strerror or type(exc).__name__}")]) from None
    if len(data) > b.INVOICE_MAX_BYTES:
        raise InputInvalid([Problem(path, "", f"larger than {b.INVOICE_MAX_BYTES // (1024 * 1024)} MiB: "
                                              "expected an invoice CSV")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputInvalid([Problem(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
