"""Bills per contract (pure): proration, credits, ceilings, and that the numbers reconcile."""
from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from hypothesis import given, settings, strategies as st

from yunshang import billing as b
from yunshang.billing_html import statement_html
from yunshang.catalog import load_catalog
from yunshang.errors import InputInvalid
from yunshang.sla import ProbeSample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAT = load_catalog(os.path.join(ROOT, "examples", "prefecture"))
UTC = dt.timezone.utc
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
DEC = dt.datetime(2026, 12, 1, tzinfo=UTC)


def held(dept="health", op="unicom", contract="WJ-2025-01", start=NOV, end=None, vcpu=4, ram=8, disk=80, fip=1,
         req="his", zone="az1"):
    return b.HeldResource(dept, op, contract, req, "primary", zone, vcpu, ram, disk, fip, start, end)


def test_a_whole_month_costs_exactly_the_monthly_price():
    prices = CAT.provider("unicom").prices
    [bill] = b.bills(CAT, [held(start=dt.datetime(2026, 10, 3, tzinfo=UTC))], "2026-11", department="health")
    c = next(c for c in bill.contracts if c.contract == "WJ-2025-01")
    assert c.gross_fen == round(prices.monthly_cny(4, 8, 80, 1) * 100)
    assert c.lines[0].hours == 720 and c.lines[0].start == NOV and c.lines[0].end == DEC


def test_ninety_minutes_are_prorated_to_the_second():
    prices = CAT.provider("unicom").prices
    s = dt.datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    [bill] = b.bills(CAT, [held(start=s, end=s + dt.timedelta(minutes=90))], "2026-11", department="health")
    line = bill.contracts[0].lines[0] if bill.contracts[0].lines else bill.contracts[1].lines[0]
    assert line.hours == 1.5
    assert line.amount_fen == round(prices.monthly_cny(4, 8, 80, 1) * 1.5 / 720 * 100)


def test_holdings_outside_the_month_cost_nothing_and_contracts_still_listed():
    [bill] = b.bills(CAT, [held(start=dt.datetime(2026, 12, 2, tzinfo=UTC))], "2026-11", department="health")
    assert {c.contract for c in bill.contracts} == {"WJ-2025-01", "WJ-2025-02"}
    assert bill.net_fen == 0


def test_sla_credit_tier_applies_and_maintenance_is_excluded():
    unicom = CAT.provider("unicom")
    samples = [ProbeSample(NOV + dt.timedelta(minutes=i), i % 500 != 0) for i in range(10000)]   # 20 bad of 10000
    ev = b.evidence_from_samples({"portal": samples}, unicom.maintenance, unicom.sla.availability, NOV)
    assert (ev.good, ev.bad) == (9980, 20) and ev.availability_ratio == pytest.approx(0.998)
    [bill] = b.bills(CAT, [held()], "2026-11", evidence={"WJ-2025-01": ev}, department="health")
    c = next(c for c in bill.contracts if c.contract == "WJ-2025-01")
    assert c.credit_ratio == 0.15                  # below 0.999 -> 15 %
    assert c.credit_fen == round(c.gross_fen * 0.15) and c.net_fen == c.gross_fen - c.credit_fen
    telecom = CAT.provider("telecom")                 # maintenance 2026-11-14 16:00-20:00
    w = telecom.maintenance[0]
    inside = [ProbeSample(w.start.replace(tzinfo=UTC) + dt.timedelta(minutes=i), False) for i in range(60)]
    ev2 = b.evidence_from_samples({"x": inside + [ProbeSample(NOV, True)]}, telecom.maintenance, 0.9995, NOV)
    assert (ev2.good, ev2.bad, ev2.excluded, ev2.availability_ratio) == (1, 0, 60, 1.0)


def test_ceiling_use_and_over_ceiling():
    big = held(vcpu=5000, ram=1000, disk=0, fip=0)
    [bill] = b.bills(CAT, [big], "2026-11", department="health")
    c = next(c for c in bill.contracts if c.contract == "WJ-2025-01")
    assert c.ceiling_used_ratio == pytest.approx(c.net_cny / 120000) and c.over_ceiling


def test_bad_month():
    with pytest.raises(InputInvalid, match="expected YYYY-MM"):
        b.parse_month("2026-13")


CONTRACTS = [(d.name, c.id, c.provider) for d in CAT.departments for c in d.contracts
             if c.start <= dt.date(2026, 11, 30) and c.end >= dt.date(2026, 11, 1)]


@st.composite
def holdings(draw):
    out = []
    for _ in range(draw(st.integers(0, 25))):
        dept, cid, op = draw(st.sampled_from(CONTRACTS))
        s = NOV + dt.timedelta(seconds=draw(st.integers(-5 * 86400, 31 * 86400)))
        dur = draw(st.one_of(st.none(), st.integers(1, 40 * 86400)))
        out.append(held(dept, op, cid, s, None if dur is None else s + dt.timedelta(seconds=dur),
                        draw(st.integers(0, 64)), draw(st.integers(0, 256)), draw(st.integers(0, 4000)),
                        draw(st.integers(0, 3))))
    return out


@settings(max_examples=60, deadline=None)
@given(holdings(), st.dictionaries(st.sampled_from([c for _, c, _ in CONTRACTS]),
                                   st.floats(0.95, 1.0), max_size=5))
def test_sum_of_department_bills_equals_each_operator_total(hs, avail):
    ev = {cid: b.SlaEvidence(int(a * 10000), 10000 - int(a * 10000), 0, 0.9995, int(a * 10000) / 10000, True)
          for cid, a in avail.items()}
    bills = b.bills(CAT, hs, "2026-11", evidence=ev)
    totals = {t.operator: t for t in b.operator_totals(bills)}
    for op in {p.name for p in CAT.providers}:
        dept_sum = sum(c.net_fen for bill in bills for c in bill.contracts if c.operator == op)
        assert dept_sum == (totals[op].net_fen if op in totals else 0)
        # and the gross, metered independently holding by holding
        direct = sum(li.amount_fen for h in hs if h.operator == op
                     for li in [b.meter(h, NOV, DEC, CAT.provider(op).prices)] if li)
        assert direct == (totals[op].gross_fen if op in totals else 0)
    for bill in bills:                     # daily split sums to the charges within rounding
        for c in bill.contracts:
            assert abs(sum(v for _, v in c.daily_fen) - c.gross_fen) <= len(c.daily_fen)


def test_statement_is_one_self_contained_page():
    s = dt.datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    samples = [ProbeSample(NOV + dt.timedelta(minutes=10 * i), i % 97 != 0) for i in range(4000)]
    ev = b.evidence_from_samples({"portal": samples}, (), 0.9995, NOV)
    [bill] = b.bills(CAT, [held(start=s), held(op="telecom", contract="WJ-2025-02", req="his", zone="az2")],
                     "2026-11", evidence={"WJ-2025-01": ev}, department="health")
    page = statement_html(bill, CAT, dt.datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert page.count("<svg") >= 3 and "卫健委" in page and "WJ-2025-02" in page
    assert "default-src 'none'" in page
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script|<link", page, re.I)
