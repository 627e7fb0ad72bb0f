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
    rows = []
    for b in department_bills:
        for c in b.contracts:
            for li in c.lines:
                h = li.held
                rows.append((b.month, b.department, c.contract, c.operator, c.role, h.request, h.request_id, h.zone,
                             h.vcpu, h.ram_gb, h.disk_gb, h.floating_ips, li.start.isoformat(), li.end.isoformat(),
                             round(li.hours, 4), li.monthly_price_cny, f"{li.amount_cny:.2f}", int(b.projected)))
            rows.append((b.month, b.department, c.contract, c.operator, c.role, "(sla credit)", "", "", "", "", "", "",
                         "", "", "", "", f"{-c.credit_cny:.2f}", int(b.projected)))
            rows.append((b.month, b.department, c.contract, c.operator, c.role, "(net)", "", "", "", "", "", "",
                         "", "", "", "", f"{c.net_cny:.2f}", int(b.projected)))
    return rows
