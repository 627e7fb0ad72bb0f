"""Bill use cases: the month's bill and SLA evidence per contract, and the HTML statement."""
from __future__ import annotations

import datetime as dt

from yunshang import billing as b
from yunshang.authz import Identity, authorize, sees_department
from yunshang.errors import NotFound
from yunshang.usecases import Deps

PROBE_QUERY = 'yunshang_probe_success{department!=""}'


def evidence_from_prometheus(prometheus_url: str, catalog, month: str,
                             now: dt.datetime | None = None) -> dict[str, b.SlaEvidence]:
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
        operator = next((c.provider for d in catalog.departments for c in d.contracts if c.id == cid), None)
        if operator is None:
            continue
        prov = catalog.provider(operator)
        out[cid] = b.evidence_from_samples(probes, prov.maintenance, prov.sla.availability, start)
    return out


def month_bills(deps: Deps, who: Identity | None, month: str, department: str | None = None,
                prometheus_url: str | None = None, now: dt.datetime | None = None, projected: bool = False) -> tuple:
    """The month's bills (one per department; ``department``: only that one).

    ``who`` None: the center's own batch run on its machine (the CLI's ``yunshang bill``);
    a department role sees only its own department's bill.
    """
    b.parse_month(month)
    if who is not None:
        authorize(who, "bill.read", department, hide_existence=True)
        only = sees_department(who, "bill.read")
        if only is not None:
            department = only
    if department:
        try:
            deps.catalog.department(department)
        except KeyError:
            raise NotFound(f"unknown department {department!r} in the catalog") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    held = deps.store.holdings()
    evidence = evidence_from_prometheus(prometheus_url, deps.catalog, month, now) if prometheus_url else {}
    return b.bills(deps.catalog, held, month, evidence=evidence, department=department, now=now,
                   projected=projected)


def statement(deps: Deps, who: Identity | None, month: str, department: str, prometheus_url: str | None = None,
              issued: dt.datetime | None = None) -> str:
    """The HTML statement of ``department`` for ``month``."""
    from yunshang.billing_html import statement_html

    [bill] = month_bills(deps, who, month, department, prometheus_url)
    return statement_html(bill, deps.catalog, issued or dt.datetime.now(dt.timezone.utc))


def reconcile_invoice(deps: Deps, who: Identity | None, month: str, invoice, *, operator: str | None = None,
                      tolerance_fen: int = 100, prometheus_url: str | None = None,
                      now: dt.datetime | None = None) -> b.Reconciliation:
    """The three-way check of an operator's invoice (``billing.reconcile``) against every department's metering.

    A center task: ``who`` None is the center's batch on its own machine (the CLI); a person needs a
    center role that reads bills (a department's role sees only its own bill, not the operator's invoice).
    """
    from yunshang.authz import NotPermitted

    if who is not None:
        authorize(who, "bill.read")
        if sees_department(who, "bill.read") is not None:
            raise NotPermitted(f"{who.name} may not reconcile an operator's invoice: it covers every department")
    if operator:
        try:
            deps.catalog.provider(operator)
        except KeyError:
            raise NotFound(f"unknown operator {operator!r} in the catalog") from None
    bills = month_bills(deps, None, month, None, prometheus_url, now=now)
    return b.reconcile(deps.catalog, bills, invoice, month, tolerance_fen=tolerance_fen, operator=operator)


def report_holdings(deps: Deps, who: Identity | None) -> list:
    """What every department held (the monthly report's spend and capacity use): a center role's
    (``report.read``); a department's people read only their own bill, never the whole prefecture's."""
    authorize(who, "report.read")
    return deps.store.holdings()
