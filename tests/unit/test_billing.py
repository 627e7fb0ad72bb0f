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
    [bill] = b.bills(CAT, [held(start=dt.datetime(2026, 10, 3, tzinfo=UTC))], "2026-11", department="health", now=DEC)
    c = next(c for c in bill.contracts if c.contract == "WJ-2025-01")
    assert c.gross_fen == round(prices.monthly_cny(4, 8, 80, 1) * 100)
    assert c.lines[0].hours == 720 and c.lines[0].start == NOV and c.lines[0].end == DEC


def test_ninety_minutes_are_prorated_to_the_second():
    prices = CAT.provider("unicom").prices
    s = dt.datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    [bill] = b.bills(CAT, [held(start=s, end=s + dt.timedelta(minutes=90))], "2026-11", department="health", now=DEC)
    line = bill.contracts[0].lines[0] if bill.contracts[0].lines else bill.contracts[1].lines[0]
    assert line.hours == 1.5
    assert line.amount_fen == round(prices.monthly_cny(4, 8, 80, 1) * 1.5 / 720 * 100)


def test_holdings_outside_the_month_cost_nothing_and_contracts_still_listed():
    [bill] = b.bills(CAT, [held(start=dt.datetime(2026, 12, 2, tzinfo=UTC))], "2026-11", department="health", now=DEC)
    assert {c.contract for c in bill.contracts} == {"WJ-2025-01", "WJ-2025-02"}
    assert bill.net_fen == 0


def test_sla_credit_tier_applies_and_maintenance_is_excluded():
    unicom = CAT.provider("unicom")
    samples = [ProbeSample(NOV + dt.timedelta(minutes=i), i % 500 != 0) for i in range(10000)]   # 20 bad of 10000
    ev = b.evidence_from_samples({"portal": samples}, unicom.maintenance, unicom.sla.availability, NOV)
    assert (ev.good, ev.bad) == (9980, 20) and ev.availability_ratio == pytest.approx(0.998)
    [bill] = b.bills(CAT, [held()], "2026-11", evidence={"WJ-2025-01": ev}, department="health",
                     now=DEC)
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
    [bill] = b.bills(CAT, [big], "2026-11", department="health", now=DEC)
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
    bills = b.bills(CAT, hs, "2026-11", evidence=ev, now=DEC)
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
                     "2026-11", evidence={"WJ-2025-01": ev}, department="health",
                     now=DEC)
    page = statement_html(bill, CAT, dt.datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert page.count("<svg") >= 3 and "卫健委" in page and "WJ-2025-02" in page
    assert "default-src 'none'" in page
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script|<link", page, re.I)


# --------------------------------------------------------------------------- to date / projected (exact values)
# unicom prices: vcpu 28, ram_gb 12, disk_gb 0.45, floating_ip 20 -> (4, 8, 80, 1) costs 264.00 CNY a month
def _health_primary(bill):
    return next(c for c in bill.contracts if c.contract == "WJ-2025-01")


def test_the_monthly_price_of_the_test_holding_is_264():
    assert CAT.provider("unicom").prices.monthly_cny(4, 8, 80, 1) == 264


def test_a_month_not_over_is_charged_to_now_not_to_month_end():
    now = dt.datetime(2026, 11, 1, 10, tzinfo=UTC)          # configured on the 1st at 00:00, billed at 10:00
    [bill] = b.bills(CAT, [held(start=NOV)], "2026-11", department="health", now=now)
    c = _health_primary(bill)
    assert c.lines[0].hours == 10 and c.lines[0].end == now
    assert c.gross_fen == 367                              # 264 x 10 / 720 = 3.6667
    assert bill.to == now and c.to == now and not bill.projected
    assert c.daily_fen == (("2026-11-01", 367),)           # no day that has not happened
    assert b.bill_days(bill) == ["2026-11-01"]
    d = b.bill_to_dict(bill)
    assert d["to"] == "2026-11-01T10:00:00+00:00" and d["projected"] is False


def test_projected_charges_what_is_held_to_month_end_and_says_so():
    now = dt.datetime(2026, 11, 1, 10, tzinfo=UTC)
    [bill] = b.bills(CAT, [held(start=NOV)], "2026-11", department="health", now=now, projected=True)
    c = _health_primary(bill)
    assert c.lines[0].hours == 720 and c.gross_fen == 26400
    assert bill.projected and c.projected and bill.to == DEC
    assert len(b.bill_days(bill)) == 30
    assert b.bill_to_dict(bill)["projected"] is True
    page = statement_html(bill, CAT, now)
    assert "PROJECTED" in page and "projected to month end" in page
    rows = b.csv_rows([bill])
    assert rows and all(r[-1] == 1 for r in rows)


def test_a_month_that_is_over_is_the_same_with_or_without_projection():
    later = dt.datetime(2027, 3, 5, tzinfo=UTC)
    a = b.bills(CAT, [held(start=NOV)], "2026-11", department="health", now=later)
    p = b.bills(CAT, [held(start=NOV)], "2026-11", department="health", now=later, projected=True)
    assert _health_primary(a[0]).gross_fen == _health_primary(p[0]).gross_fen == 26400
    assert not p[0].projected and a[0].to == DEC                # nothing left to forecast
    assert "whole month" in statement_html(a[0], CAT, later)


@pytest.mark.parametrize("month,start,end,hours", [
    ("2026-01", dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 2, 1, tzinfo=UTC), 744),
    ("2026-12", dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC), 744),
    ("2026-02", dt.datetime(2026, 2, 1, tzinfo=UTC), dt.datetime(2026, 3, 1, tzinfo=UTC), 672),
    ("2028-02", dt.datetime(2028, 2, 1, tzinfo=UTC), dt.datetime(2028, 3, 1, tzinfo=UTC), 696),
])
def test_month_bounds_january_december_february(month, start, end, hours):
    assert b.parse_month(month) == (start, end)
    [bill] = b.bills(CAT, [held(start=start - dt.timedelta(days=3))], month, department="health",
                     now=end + dt.timedelta(days=1))
    c = _health_primary(bill)
    assert c.lines[0].hours == hours and c.gross_fen == 26400 and len(c.daily_fen) == hours // 24


def test_december_to_date_and_january_from_mid_month_exact():
    dec31 = dt.datetime(2026, 12, 31, 23, tzinfo=UTC)
    [bill] = b.bills(CAT, [held(start=dt.datetime(2026, 11, 20, tzinfo=UTC))], "2026-12", department="health", now=dec31)
    assert _health_primary(bill).gross_fen == 26365           # 264 x 743 / 744 = 263.6452
    assert b.bill_days(bill)[-1] == "2026-12-31" and len(b.bill_days(bill)) == 31
    jan16 = dt.datetime(2027, 1, 16, tzinfo=UTC)
    [bill] = b.bills(CAT, [held(start=jan16)], "2027-01", department="health", now=dt.datetime(2027, 2, 1, tzinfo=UTC))
    assert _health_primary(bill).gross_fen == 13626           # 264 x 384 / 744 = 136.2581


def test_billing_period_boundaries():
    end = dt.datetime(2026, 12, 1, tzinfo=UTC)
    assert b.billing_period("2026-11", end) == (NOV, end, end)                 # the month's last instant passed
    just_before = end - dt.timedelta(microseconds=1)
    assert b.billing_period("2026-11", just_before)[2] == just_before
    assert b.billing_period("2026-11", NOV)[2] == NOV                          # first instant: nothing yet
    with pytest.raises(InputInvalid, match="2026-11 has not begun"):
        b.billing_period("2026-11", NOV - dt.timedelta(seconds=1))
    assert b.billing_period("2026-11", NOV - dt.timedelta(days=3), projected=True)[2] == end
    with pytest.raises(ValueError, match="timezone-aware"):
        b.billing_period("2026-11", dt.datetime(2026, 11, 5))


def test_on_the_first_instant_of_the_month_nothing_is_charged():
    [bill] = b.bills(CAT, [held(start=NOV - dt.timedelta(days=1))], "2026-11", department="health", now=NOV)
    assert _health_primary(bill).gross_fen == 0 and _health_primary(bill).lines == ()


@pytest.mark.parametrize("text", ["2026-00", "2026-13", "0000-01", "9999-12", "2026-1", "2026-11\n", "", None, 202611])
def test_bad_months_are_refused(text):
    with pytest.raises(InputInvalid, match="expected YYYY-MM"):
        b.parse_month(text)


def _with_health_contracts(**dates):
    """The sample catalog with health's primary contract moved to ``start``/``end``."""
    import dataclasses

    dept = CAT.department("health")
    c = dataclasses.replace(dept.contract("WJ-2025-01"), **dates)
    d2 = dataclasses.replace(dept, contracts=(c,) + tuple(x for x in dept.contracts if x.id != c.id))
    return dataclasses.replace(CAT, departments=tuple(d2 if d.name == "health" else d for d in CAT.departments))


@pytest.mark.parametrize("dates,listed", [
    ({"start": dt.date(2025, 1, 1), "end": dt.date(2026, 11, 1)}, True),      # ends on the month's first day
    ({"start": dt.date(2025, 1, 1), "end": dt.date(2026, 10, 31)}, False),    # ended the day before
    ({"start": dt.date(2026, 11, 30), "end": dt.date(2027, 12, 31)}, True),   # starts on the last day
    ({"start": dt.date(2026, 12, 1), "end": dt.date(2027, 12, 31)}, False),   # starts the day after
])
def test_a_contract_at_the_edge_of_the_month(dates, listed):
    cat = _with_health_contracts(**dates)
    [bill] = b.bills(cat, [], "2026-11", department="health", now=DEC)
    assert ("WJ-2025-01" in {c.contract for c in bill.contracts}) is listed


def test_a_holding_on_a_contract_not_valid_in_the_month_is_still_billed():
    cat = _with_health_contracts(start=dt.date(2025, 1, 1), end=dt.date(2026, 10, 31))
    [bill] = b.bills(cat, [held(start=NOV)], "2026-11", department="health", now=DEC)
    assert _health_primary(bill).gross_fen == 26400


# --------------------------------------------------------------------------- SLA evidence and credits
def test_no_probe_data_is_null_availability_and_no_credit():
    [bill] = b.bills(CAT, [held(start=NOV)], "2026-11", department="health", now=DEC)
    c = _health_primary(bill)
    assert c.sla.availability_ratio is None and not c.sla.has_data
    assert c.credit_ratio == 0.0 and c.credit_fen == 0 and c.net_fen == 26400
    j = next(x for x in b.bill_to_dict(bill)["contracts"] if x["contract"] == "WJ-2025-01")
    assert j["sla"]["availability_ratio"] is None and j["sla"]["breached"] is False
    assert "no probe data" in statement_html(bill, CAT, DEC)


def test_samples_all_in_maintenance_are_no_data_too():
    telecom = CAT.provider("telecom")
    w = telecom.maintenance[0]
    inside = [ProbeSample(w.start.replace(tzinfo=UTC) + dt.timedelta(minutes=i), False) for i in range(30)]
    ev = b.evidence_from_samples({"x": inside}, telecom.maintenance, 0.9995, NOV)
    assert (ev.good, ev.bad, ev.excluded, ev.availability_ratio, ev.has_data) == (0, 0, 30, None, False)


def test_zero_availability_takes_the_top_tier_and_never_more_than_the_gross():
    ev = b.SlaEvidence(0, 100, 0, 0.9995, 0.0, True)
    [bill] = b.bills(CAT, [held(start=NOV)], "2026-11", evidence={"WJ-2025-01": ev}, department="health", now=DEC)
    c = _health_primary(bill)
    assert (c.credit_ratio, c.credit_fen, c.net_fen) == (0.15, 3960, 22440)
    assert b.sla_breached(c.sla)


@pytest.mark.parametrize("gross,ratio,credit", [(26400, 0.05, 1320), (26400, 0.0, 0), (26400, -0.3, 0),
                                               (26400, 1.7, 26400), (0, 0.15, 0), (-5, 0.15, 0), (333, 0.15, 50)])
def test_credit_is_never_negative_nor_above_the_gross(gross, ratio, credit):
    assert b.credit_fen(gross, ratio) == credit


def test_availability_just_at_each_tier_boundary():
    for avail, ratio in ((0.9995, 0.0), (0.99949, 0.05), (0.999, 0.05), (0.99899, 0.15)):
        ev = b.SlaEvidence(1, 0, 0, 0.9995, avail, True)
        [bill] = b.bills(CAT, [held(start=NOV)], "2026-11", evidence={"WJ-2025-01": ev}, department="health", now=DEC)
        assert _health_primary(bill).credit_ratio == ratio, avail
