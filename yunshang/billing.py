"""Monthly bills and SLA evidence per contract (department x operator). Pure.

Metering
--------
What a contract held comes from the lifecycle store: each configured request's
placement rows, held from ``configure`` until ``reclaim-confirm`` (``HeldResource``, read by ``Store.holdings``).
Each holding is clipped to the calendar month (UTC) and charged at the
operator's procured unit prices, prorated to the second::

    amount = Prices.monthly_cny(vcpu, ram_gb, disk_gb, floating_ips) x held_seconds / month_seconds

So a tenant held for the whole of November pays exactly the monthly price; one
held 90 minutes pays 90 / 43,200 of it.

To date, or projected
---------------------
A bill is taken at a time ``now`` (the caller's clock: the core never reads one).
For a month that is over, ``now`` changes nothing. For the current month the bill
charges what was held up to ``now`` (the statement says "to <now>"): a tenant
configured on the 1st at 00:00 and billed on the 1st at 10:00 is charged 10 hours,
and the daily chart stops at today. ``projected=True`` is the forecast instead:
everything still held is charged to the end of the month, marked
``"projected": true``. A to-date bill of a month that has not begun is refused. Every line is rounded once, to the fen
(0.01 CNY), and everything after that is integer fen, so sums reconcile
exactly: the sum of all departments' bills for an operator equals the
operator's total (``operator_totals`` aggregates the lines independently).

SLA and credits
---------------
Availability per contract is tallied from probe samples (``yunshang.sla``):
samples inside the operator's declared maintenance windows are excluded. The
credit is the contract's ``sla_credits`` tier that applies
(``sla.service_credit_ratio``, clamped to [0, 1]), taken off the contract's
gross, rounded to the fen: never negative, never more than the gross. No probe
data means no evidence either way: availability is ``None`` (``null`` in JSON,
"no probe data" on the statement) and no credit is owed.

Ceiling use = net / the contract's ``ceiling_cny_per_month``.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from yunshang import sla
from yunshang.errors import InputInvalid, Problem
from yunshang.model import Catalog, Contract

UTC = dt.timezone.utc


def parse_month(text: str) -> tuple[dt.datetime, dt.datetime]:
    """``YYYY-MM`` -> [start, end) in UTC."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text or "") if isinstance(text, str) else None
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) <= 9998:
        raise InputInvalid([Problem("--month", "month", f"expected YYYY-MM (e.g. 2026-11), got {text!r}")])
    start = dt.datetime(int(m.group(1)), int(m.group(2)), 1, tzinfo=UTC)
    return sla.month_bounds(start)


def _fen(cny: float) -> int:
    return int(round(cny * 100))


@dataclass(frozen=True)
class HeldResource:
    """What one contract held over [start, end) (end None = still held). Built from the store."""

    department: str
    operator: str
    contract: str
    request: str
    role: str
    zone: str
    vcpu: float
    ram_gb: float
    disk_gb: float
    floating_ips: float
    start: dt.datetime
    end: dt.datetime | None
    request_id: int = 0


@dataclass(frozen=True)
class LineItem:
    held: HeldResource
    start: dt.datetime           # clipped to the month
    end: dt.datetime
    hours: float
    monthly_price_cny: float     # the full-month price of these resources
    amount_fen: int

    @property
    def amount_cny(self) -> float:
        return self.amount_fen / 100


@dataclass(frozen=True)
class SlaEvidence:
    """Probe samples of one contract in the month (maintenance excluded) and what follows."""

    good: int
    bad: int
    excluded: int
    target_ratio: float
    availability_ratio: float | None     # None: no counted sample (no evidence either way)
    has_data: bool
    probes: tuple[str, ...] = ()
    daily_availability: tuple[tuple[str, float | None], ...] = ()    # (YYYY-MM-DD, ratio or None)


@dataclass(frozen=True)
class ContractBill:
    department: str
    operator: str
    contract: str
    role: str
    month: str
    lines: tuple[LineItem, ...]
    gross_fen: int
    sla: SlaEvidence
    credit_ratio: float
    credit_fen: int
    ceiling_cny: float
    daily_fen: tuple[tuple[str, int], ...] = ()
    to: dt.datetime | None = None        # charges run to this time (month end when over or projected)
    projected: bool = False

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.credit_fen

    @property
    def gross_cny(self) -> float:
        return self.gross_fen / 100

    @property
    def credit_cny(self) -> float:
        return self.credit_fen / 100

    @property
    def net_cny(self) -> float:
        return self.net_fen / 100

    @property
    def ceiling_used_ratio(self) -> float:
        return 0.0 if self.ceiling_cny <= 0 else self.net_fen / 100 / self.ceiling_cny

    @property
    def over_ceiling(self) -> bool:
        return self.ceiling_used_ratio > 1.0


@dataclass(frozen=True)
class DepartmentBill:
    department: str
    display_name: str
    month: str
    contracts: tuple[ContractBill, ...]
    to: dt.datetime | None = None        # see ContractBill.to
    projected: bool = False

    @property
    def net_fen(self) -> int:
        return sum(c.net_fen for c in self.contracts)

    @property
    def net_cny(self) -> float:
        return self.net_fen / 100


@dataclass(frozen=True)
class OperatorTotal:
    operator: str
    month: str
    gross_fen: int
    credit_fen: int
    contracts: int

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.credit_fen

    @property
    def net_cny(self) -> float:
        return self.net_fen / 100


# --------------------------------------------------------------------------- metering
def meter(held: HeldResource, start: dt.datetime, end: dt.datetime, prices,
          to: dt.datetime | None = None) -> LineItem | None:
    """The line item of ``held`` inside the month [start, end) charged up to ``to`` (default: the
    month's end), or None if nothing of it falls there. Prorated over the whole month's seconds."""
    stop = end if to is None else max(start, min(to, end))
    s = max(held.start, start)
    e = min(held.end or stop, stop)
    if e <= s:
        return None
    month_seconds = (end - start).total_seconds()
    seconds = (e - s).total_seconds()
    monthly = prices.monthly_cny(held.vcpu, held.ram_gb, held.disk_gb, held.floating_ips)
    return LineItem(held, s, e, seconds / 3600, round(monthly, 2), _fen(monthly * seconds / month_seconds))


def daily_split_fen(line: LineItem, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """The line's amount spread over the days it covers (for charts; sums to the line within rounding)."""
    out: dict[str, float] = {}
    total = (line.end - line.start).total_seconds()
    day = start
    while day < end:
        nxt = day + dt.timedelta(days=1)
        s, e = max(day, line.start), min(nxt, line.end)
        if e > s and total > 0:
            out[day.date().isoformat()] = line.amount_fen * (e - s).total_seconds() / total
        day = nxt
    return out


def evidence_from_samples(samples_by_probe: Mapping[str, Sequence[sla.ProbeSample]], maintenance,
                          target_ratio: float, month_start: dt.datetime) -> SlaEvidence:
    """Tally every probe's samples of the contract in the month (maintenance excluded)."""
    tally = sla.ProbeTally()
    per_day: dict[str, sla.ProbeTally] = {}
    for samples in samples_by_probe.values():
        tally = tally.merged(sla.tally_samples(samples, maintenance, month_start))
        m_start, m_end = sla.month_bounds(month_start)
        for s in samples:
            if m_start <= s.at < m_end:
                k = s.at.astimezone(UTC).date().isoformat()
                per_day[k] = per_day.get(k, sla.ProbeTally()).add(s.ok, sla.in_maintenance(s.at, maintenance))
    daily = tuple((k, sla.availability_ratio(v) if v.counted else None) for k, v in sorted(per_day.items()))
    return SlaEvidence(tally.good, tally.bad, tally.excluded, target_ratio,
                       sla.availability_ratio(tally) if tally.counted else None,
                       tally.counted > 0, tuple(sorted(samples_by_probe)), daily)


def no_evidence(target_ratio: float) -> SlaEvidence:
    return SlaEvidence(0, 0, 0, target_ratio, None, False)


def billing_period(month: str, now: dt.datetime, projected: bool = False) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(month start, month end, charged to) of a bill of ``month`` taken at ``now``.

    A month that is over (or a projection) is charged to its end; the current month to ``now``;
    a to-date bill of a month that has not begun is refused.
    """
    start, end = parse_month(month)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if projected or now >= end:
        return start, end, end
    if now < start:
        raise InputInvalid([Problem("--month", "month", f"{month} has not begun (now {now.strftime('%Y-%m-%d %H:%M')} "
                                                       f"UTC): nothing to bill to date; --projected forecasts it")])
    return start, end, now


def credit_fen(gross_fen: int, ratio: float) -> int:
    """The service credit of a contract's gross: the ratio clamped to [0, 1], rounded to the fen."""
    return int(round(gross_fen * min(1.0, max(0.0, ratio)))) if gross_fen > 0 else 0


def _contracts_in_month(catalog: Catalog, start: dt.datetime, end: dt.datetime) -> list[tuple[str, Contract]]:
    last = (end - dt.timedelta(seconds=1)).date()
    out = []
    for d in catalog.departments:
        for c in d.contracts:
            if c.start <= last and c.end >= start.date():
                out.append((d.name, c))
    return out


def bills(catalog: Catalog, held: Iterable[HeldResource], month: str,
          evidence: Mapping[str, SlaEvidence] | None = None,
          department: str | None = None, *, now: dt.datetime, projected: bool = False) -> tuple[DepartmentBill, ...]:
    """Every department's bill for ``month`` (YYYY-MM) taken at ``now``: per contract, lines, SLA, credit, net.

    Charged to date (``billing_period``), or to the month's end with ``projected``.
    ``evidence`` maps contract id -> SlaEvidence (from probe data); contracts without it are
    billed with ``no_evidence``. A contract appears when it was valid in the month or held
    something in it.
    """
    start, end, to = billing_period(month, now, projected)
    is_projection = projected and now < end
    evidence = evidence or {}
    lines_by_contract: dict[tuple[str, str], list[LineItem]] = {}
    for h in held:
        li = meter(h, start, end, catalog.provider(h.operator).prices, to)
        if li is not None:
            lines_by_contract.setdefault((h.department, h.contract), []).append(li)
    keys = {(d, c.id) for d, c in _contracts_in_month(catalog, start, end)} | set(lines_by_contract)
    out: dict[str, list[ContractBill]] = {}
    for dept_name, cid in sorted(keys):
        if department and dept_name != department:
            continue
        dept = catalog.department(dept_name)
        c = dept.contract(cid)
        prov = catalog.provider(c.provider)
        lines = tuple(sorted(lines_by_contract.get((dept_name, cid), []),
                             key=lambda li: (li.held.request, li.held.role, li.held.zone, li.start)))
        gross = sum(li.amount_fen for li in lines)
        ev = evidence.get(cid) or no_evidence(prov.sla.availability)
        ratio = 0.0
        if ev.has_data and ev.availability_ratio is not None:
            ratio = min(1.0, max(0.0, sla.service_credit_ratio(ev.availability_ratio, c.sla_credits)))
        daily: dict[str, float] = {}
        for li in lines:
            for k, v in daily_split_fen(li, start, to).items():
                daily[k] = daily.get(k, 0.0) + v
        out.setdefault(dept_name, []).append(ContractBill(
            department=dept_name, operator=c.provider, contract=cid, role=c.role, month=month, lines=lines,
            gross_fen=gross, sla=ev, credit_ratio=ratio, credit_fen=credit_fen(gross, ratio),
            ceiling_cny=c.ceiling_cny_per_month,
            daily_fen=tuple((k, int(round(v))) for k, v in sorted(daily.items())), to=to, projected=is_projection))
    return tuple(DepartmentBill(d, catalog.department(d).display_name, month, tuple(cs), to, is_projection)
                 for d, cs in sorted(out.items()))


def bill_days(bill: DepartmentBill) -> list[str]:
    """The days (YYYY-MM-DD) the bill covers: the month's, up to the day of ``to`` (charts show no day to come)."""
    start, end = parse_month(bill.month)
    stop = bill.to or end
    days, d = [], start
    while d < stop:
        days.append(d.date().isoformat())
        d += dt.timedelta(days=1)
    return days


def operator_totals(department_bills: Iterable[DepartmentBill]) -> tuple[OperatorTotal, ...]:
    """Per operator, aggregated straight from the line items and contract credits."""
    acc: dict[str, list[int]] = {}
    month = ""
    for b in department_bills:
        month = b.month
        for c in b.contracts:
            a = acc.setdefault(c.operator, [0, 0, 0])
            a[0] += sum(li.amount_fen for li in c.lines)
            a[1] += c.credit_fen
            a[2] += 1
    return tuple(OperatorTotal(op, month, g, cr, n) for op, (g, cr, n) in sorted(acc.items()))


def sla_breached(ev: SlaEvidence) -> bool:
    return ev.has_data and ev.availability_ratio is not None and ev.availability_ratio < ev.target_ratio


# --------------------------------------------------------------------------- output forms
def bill_to_dict(b: DepartmentBill) -> dict:
    return {
        "department": b.department, "display_name": b.display_name, "month": b.month,
        "to": b.to.isoformat() if b.to else None, "projected": b.projected,
        "net_cny": b.net_cny,
        "contracts": [{
            "contract": c.contract, "operator": c.operator, "role": c.role,
            "gross_cny": c.gross_cny, "credit_ratio": c.credit_ratio, "credit_cny": c.credit_cny,
            "net_cny": c.net_cny, "ceiling_cny": c.ceiling_cny,
            "ceiling_used_ratio": round(c.ceiling_used_ratio, 6), "over_ceiling": c.over_ceiling,
            "sla": {"availability_ratio": c.sla.availability_ratio, "target_ratio": c.sla.target_ratio,
                    "has_probe_data": c.sla.has_data, "samples_good": c.sla.good, "samples_bad": c.sla.bad,
                    "samples_in_maintenance": c.sla.excluded, "probes": list(c.sla.probes),
                    "breached": sla_breached(c.sla)},
            "lines": [{"request_id": li.held.request_id, "request": li.held.request, "role": li.held.role,
                       "zone": li.held.zone, "vcpu": li.held.vcpu, "ram_gb": li.held.ram_gb,
                       "disk_gb": li.held.disk_gb, "floating_ips": li.held.floating_ips,
                       "start": li.start.isoformat(), "end": li.end.isoformat(), "hours": round(li.hours, 4),
                       "monthly_price_cny": li.monthly_price_cny, "amount_cny": li.amount_cny}
                      for li in c.lines],
        } for c in b.contracts],
    }


CSV_HEADER = ("month", "department", "contract", "operator", "role", "request", "request_id", "zone", "vcpu",
              "ram_gb", "disk_gb", "floating_ips", "start", "end", "hours", "monthly_price_cny", "amount_cny",
              "projected")


def csv_rows(department_bills: Iterable[DepartmentBill]) -> list[tuple]:
    """One row per line item, then one summary row per contract (request = '(credit)' / '(net)')."""
    rows: list[tuple] = []
    for b in department_bills:
        for c in b.contracts:
            for li in c.lines:
                h = li.held
                rows.append((b.month, b.department, c.contract, c.operator, c.role, h.request, h.request_id, h.zone,
                             h.vcpu, h.ram_gb, h.disk_gb, h.floating_ips, li.start.isoformat(), li.end.isoformat(),
                             round(li.hours, 4), li.monthly_price_cny, f"{li.amount_cny:.2f}", int(b.projected)))
            rows.append((b.month, b.department, c.contract, c.operator, c.role, "(sla credit)", "", "", "", "", "", "",
                         "", "", "", "", f"{-c.credit_fen / 100:.2f}", int(b.projected)))
            rows.append((b.month, b.department, c.contract, c.operator, c.role, "(net)", "", "", "", "", "", "",
                         "", "", "", "", f"{c.net_cny:.2f}", int(b.projected)))
    return rows


# --------------------------------------------------------------------------- reconcile with an operator's invoice
# An invoice line bills one resource of one contract: quantity in unit-hours held in the month
# (vCPU-hours, GB-hours of RAM or disk, IP-hours), amount in CNY. "sla_credit" is the credit the
# operator gave (amount <= 0, quantity 0).
INVOICE_RESOURCES = ("vcpu", "ram_gb", "disk_gb", "floating_ip")
CREDIT_RESOURCE = "sla_credit"
INVOICE_COLUMNS = ("contract", "resource", "quantity", "amount")
INVOICE_MAX_BYTES = 4 * 1024 * 1024
INVOICE_MAX_ROWS = 100_000
_MAX_QUANTITY = 1e9                  # unit-hours
_MAX_AMOUNT = 1e10                   # CNY
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d{0,11})(?:\.\d{1,6})?")
_AMOUNT = re.compile(r"-?(?:0|[1-9]\d{0,11})(?:\.\d{1,2})?")
_CONTRACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class InvoiceLine:
    contract: str
    resource: str
    quantity: float          # unit-hours
    amount_fen: int
    line: int                # line number in the CSV file


def parse_invoice_csv(text: str, file: str) -> tuple[InvoiceLine, ...]:
    """The lines of an operator's invoice (CSV with a header: contract, resource, quantity, amount).

    Extra columns are ignored; blank lines skipped. Every problem is reported at once (file, line,
    field, what was expected) as ``InputInvalid``: a header without the four columns or with a
    duplicate, an unknown resource, a number that is not a plain decimal (no exponent, no thousands
    separator, no inf/nan) or out of bounds, a negative charge, a credit that is not <= 0, NUL bytes,
    more than INVOICE_MAX_ROWS rows.
    """
    import csv
    import io

    problems: list[Problem] = []
    if "\x00" in text:
        raise InputInvalid([Problem(file, "", "contains NUL bytes: expected a CSV text file")])
    text = text.removeprefix("\ufeff")
    try:
        rows = list(_bounded_rows(csv.reader(io.StringIO(text), strict=True), INVOICE_MAX_ROWS + 2))
    except csv.Error as exc:
        raise InputInvalid([Problem(file, "", f"not valid CSV: {exc}")]) from None
    rows = [(i, r) for i, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not rows:
        raise InputInvalid([Problem(file, "", f"empty: expected a header line {','.join(INVOICE_COLUMNS)}")])
    if len(rows) > INVOICE_MAX_ROWS + 1:
        raise InputInvalid([Problem(file, "", f"more than {INVOICE_MAX_ROWS} lines")])
    (hline, header), body = rows[0], rows[1:]
    names = [h.strip().lower() for h in header]
    dup = sorted({n for n in names if n and names.count(n) > 1})
    missing = [c for c in INVOICE_COLUMNS if c not in names]
    if dup or missing:
        what = (f"missing column(s) {', '.join(missing)}" if missing else "") + \
               ("; " if missing and dup else "") + (f"duplicate column(s) {', '.join(dup)}" if dup else "")
        raise InputInvalid([Problem(file, "header", f"{what}: expected a header line with "
                                                    f"{', '.join(INVOICE_COLUMNS)} (other columns are ignored)",
                                    hline)])
    col = {c: names.index(c) for c in INVOICE_COLUMNS}
    out: list[InvoiceLine] = []
    kinds = ", ".join(INVOICE_RESOURCES + (CREDIT_RESOURCE,))
    for n, r in body:
        if len(r) != len(header):
            problems.append(Problem(file, "", f"{len(r)} fields, the header has {len(header)}", n))
            continue
        cid, res, q, a = (r[col[c]].strip() for c in INVOICE_COLUMNS)
        ok = True
        if not _CONTRACT_ID.fullmatch(cid):
            problems.append(Problem(file, "contract", f"expected a contract id (letters, digits, . _ -), got {cid[:40]!r}", n))
            ok = False
        if res not in INVOICE_RESOURCES and res != CREDIT_RESOURCE:
            problems.append(Problem(file, "resource", f"expected one of {kinds}, got {res[:40]!r}", n))
            ok = False
        if not _DECIMAL.fullmatch(q) or not 0 <= float(q) <= _MAX_QUANTITY:
            problems.append(Problem(file, "quantity", f"expected a plain decimal number of unit-hours, 0..{_MAX_QUANTITY:.0e}"
                                                      f", got {q[:40]!r}", n))
            ok = False
        if not _AMOUNT.fullmatch(a) or not abs(float(a)) <= _MAX_AMOUNT:
            problems.append(Problem(file, "amount", f"expected CNY as a plain decimal with at most 2 decimals, "
                                                    f"|amount| <= {_MAX_AMOUNT:.0e}, got {a[:40]!r}", n))
            ok = False
        if ok and res == CREDIT_RESOURCE and (float(a) > 0 or float(q) != 0):
            problems.append(Problem(file, "amount", "an sla_credit line has quantity 0 and an amount <= 0 "
                                                    f"(a credit), got quantity {q}, amount {a}", n))
            ok = False
        if ok and res != CREDIT_RESOURCE and float(a) < 0:
            problems.append(Problem(file, "amount", f"a charge cannot be negative (got {a}); credits go on "
                                                    "sla_credit lines", n))
            ok = False
        if ok:
            out.append(InvoiceLine(cid, res, float(q), _fen_of_decimal(a), n))
        if len(problems) >= 50:
            problems.append(Problem(file, "", "more problems not shown"))
            break
    if problems:
        raise InputInvalid(problems)
    return tuple(out)


def _bounded_rows(reader, limit: int):
    for i, row in enumerate(reader):
        if i >= limit:
            return
        yield row


def _fen_of_decimal(text: str) -> int:
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if neg else fen


@dataclass(frozen=True)
class Difference:
    """One (contract, resource) where the invoice and yunshang's metering at the contract price disagree."""

    contract: str
    resource: str
    metered_quantity: float      # unit-hours yunshang metered
    invoiced_quantity: float
    expected_fen: int            # metered quantity at the contract (procured) price
    invoiced_fen: int
    quantity_fen: int            # the part of the difference due to the quantity (at the contract price)
    price_fen: int               # the part due to the price charged (invoiced - invoiced quantity x price)
    why: str

    @property
    def difference_fen(self) -> int:
        return self.invoiced_fen - self.expected_fen


@dataclass(frozen=True)
class ContractReconciliation:
    contract: str
    department: str              # "" for a contract the catalog does not know
    operator: str
    expected_fen: int            # what yunshang metered at the contract prices, credit included
    invoiced_fen: int
    differences: tuple[Difference, ...]

    @property
    def difference_fen(self) -> int:
        return self.invoiced_fen - self.expected_fen


@dataclass(frozen=True)
class Reconciliation:
    month: str
    to: dt.datetime
    tolerance_fen: int
    contracts: tuple[ContractReconciliation, ...]

    @property
    def reconciled(self) -> bool:
        return not any(c.differences for c in self.contracts)


def _metered_by_resource(c: ContractBill, month_seconds: float, prices) -> dict[str, tuple[float, int]]:
    """resource -> (unit-hours held, amount at the contract price in fen) for one contract's lines."""
    out: dict[str, tuple[float, int]] = {}
    for res, attr in (("vcpu", "vcpu"), ("ram_gb", "ram_gb"), ("disk_gb", "disk_gb"), ("floating_ip", "floating_ips")):
        unit_seconds = sum(getattr(li.held, attr) * (li.end - li.start).total_seconds() for li in c.lines)
        if unit_seconds:
            out[res] = (unit_seconds / 3600, _fen(getattr(prices, res) * unit_seconds / month_seconds))
    return out


def reconcile(catalog: Catalog, department_bills: Iterable[DepartmentBill], invoice: Sequence[InvoiceLine],
              month: str, *, tolerance_fen: int = 100, operator: str | None = None) -> Reconciliation:
    """Three-way check of ``month``: yunshang's metering (``department_bills``), the contract prices
    (the operator's procured unit prices) and the operator's ``invoice``.

    Per (contract, resource): expected = metered unit-hours x price per unit-hour; the difference
    invoiced - expected splits into a quantity part ((invoiced - metered unit-hours) x price) and a
    price part (invoiced - invoiced unit-hours x price). A difference is listed when its amount, its
    quantity part or its price part exceeds ``tolerance_fen``. The SLA credit is compared as
    ``sla_credit`` (expected: minus yunshang's credit). Contracts compared: those on the invoice and,
    with ``operator``, every contract of that operator that metered something (one missing from the
    invoice is listed). Invoice lines for the same (contract, resource) are summed.
    """
    bills_list = tuple(department_bills)
    start, end = parse_month(month)
    to = next((b.to for b in bills_list if b.to), end)
    month_seconds = (end - start).total_seconds()
    month_hours = month_seconds / 3600
    by_contract = {c.contract: c for b in bills_list for c in b.contracts}
    known = {c.id: (d.name, c.provider) for d in catalog.departments for c in d.contracts}
    inv: dict[tuple[str, str], list[float]] = {}
    for li in invoice:
        acc = inv.setdefault((li.contract, li.resource), [0.0, 0])
        acc[0] += li.quantity
        acc[1] += li.amount_fen
    cids = {cid for cid, _ in inv}
    if operator:
        cids |= {cid for cid, c in by_contract.items() if c.operator == operator and (c.lines or c.credit_fen)}
    out = []
    for cid in sorted(cids):
        dept, op = known.get(cid, ("", ""))
        diffs: list[Difference] = []
        if not dept:
            amount = sum(int(v[1]) for (c, _), v in inv.items() if c == cid)
            diffs.append(Difference(cid, "*", 0.0, sum(v[0] for (c, _), v in inv.items() if c == cid), 0, amount,
                                    0, 0, "contract unknown to the catalog: nothing metered, nothing agreed"))
            out.append(ContractReconciliation(cid, "", "", 0, amount, tuple(diffs)))
            continue
        prices = catalog.provider(op).prices
        cb = by_contract.get(cid)
        metered = _metered_by_resource(cb, month_seconds, prices) if cb else {}
        expected_total = invoiced_total = 0
        for res in INVOICE_RESOURCES + (CREDIT_RESOURCE,):
            if res == CREDIT_RESOURCE:
                mq, exp = 0.0, -(cb.credit_fen if cb else 0)
            else:
                mq, exp = metered.get(res, (0.0, 0))
            iq, got = inv.get((cid, res), (0.0, 0))
            got = int(got)
            expected_total += exp
            invoiced_total += got
            if (cid, res) not in inv and not mq and not exp:
                continue
            if res == CREDIT_RESOURCE:
                q_part, p_part = 0, got - exp
            else:
                per_hour = getattr(prices, res) / month_hours
                q_part = _fen((iq - mq) * per_hour)
                p_part = got - _fen(iq * per_hour)
            if max(abs(got - exp), abs(q_part), abs(p_part)) <= tolerance_fen:
                continue
            diffs.append(Difference(cid, res, round(mq, 6), iq, exp, got, q_part, p_part,
                                    _why(res, (cid, res) in inv, mq, iq, got, exp, q_part, p_part, tolerance_fen,
                                         getattr(prices, res, 0.0), month_hours)))
        out.append(ContractReconciliation(cid, dept, op, expected_total, invoiced_total, tuple(diffs)))
    return Reconciliation(month, to, tolerance_fen, tuple(out))


def _why(res: str, on_invoice: bool, mq: float, iq: float, got: int, exp: int, q_part: int, p_part: int,
         tol: int, unit_price: float, month_hours: float) -> str:
    if not on_invoice:
        return "not on the invoice" + (f": yunshang metered {mq:,.2f} unit-hours" if mq else "")
    if res == CREDIT_RESOURCE:
        return (f"SLA credit: invoiced {got / 100:,.2f} CNY, yunshang's SLA evidence gives {exp / 100:,.2f} CNY")
    parts = []
    if not mq and iq:
        parts.append(f"not metered by yunshang: invoiced {iq:,.2f} unit-hours")
    elif abs(q_part) > tol:
        parts.append(f"quantity: invoiced {iq:,.2f} unit-hours, yunshang metered {mq:,.2f}")
    if abs(p_part) > tol:
        charged = got / 100 / iq * month_hours if iq else float("nan")
        parts.append(f"price: charged {charged:,.4f} CNY per unit-month, contract {unit_price:,.4f}" if iq
                     else f"price: {got / 100:,.2f} CNY charged for 0 unit-hours")
    return "; ".join(parts) or f"amount: invoiced {got / 100:,.2f} CNY, expected {exp / 100:,.2f} CNY"


def reconciliation_to_dict(r: Reconciliation) -> dict:
    return {
        "month": r.month, "to": r.to.isoformat(), "tolerance_cny": r.tolerance_fen / 100,
        "reconciled": r.reconciled,
        "contracts": [{
            "contract": c.contract, "department": c.department or None, "operator": c.operator or None,
            "expected_cny": c.expected_fen / 100, "invoiced_cny": c.invoiced_fen / 100,
            "difference_cny": c.difference_fen / 100,
            "differences": [{
                "resource": d.resource, "metered_quantity": d.metered_quantity,
                "invoiced_quantity": d.invoiced_quantity, "expected_cny": d.expected_fen / 100,
                "invoiced_cny": d.invoiced_fen / 100, "difference_cny": d.difference_fen / 100,
                "quantity_part_cny": d.quantity_fen / 100, "price_part_cny": d.price_fen / 100, "why": d.why,
            } for d in c.differences],
        } for c in r.contracts],
    }
