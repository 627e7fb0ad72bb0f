"""Bills pinned to known numbers: every amount, ratio and row of small hand-computed bills, the
edges of a day and of the month, and the records frozen. Written against mutation testing
(docs/testing.md): each test fails when a comparison, a rounding or a sum in billing.py is off."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from catalog_fixtures import catalog, department, provider
from yunshang import billing as b
from yunshang.model import Contract, SlaCredit
from yunshang.sla import ProbeSample

UTC = dt.timezone.utc
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
DEC = dt.datetime(2026, 12, 1, tzinfo=UTC)
LATER = dt.datetime(2027, 1, 5, tzinfo=UTC)            # November is over: billed whole
CREDITS = (SlaCredit(0.9995, 0.05), SlaCredit(0.999, 0.15))

TEL = provider("telecom", prices=(30, 10, 0.5, 25))     # 2 vCPU / 4 GB / 50 GB / 1 IP: 60 + 40 + 25 + 25 = 150
UNI = provider("unicom", prices=(28, 12, 0.45, 20))
ODD = provider("oddcloud", prices=(1, 1, 0.333, 0))     # 1 / 1 / 1: 2.333 a month


def con(cid, prov, role="primary", *, start=dt.date(2026, 1, 1), end=dt.date(2027, 12, 31), ceiling=1000.0,
        credits=()):
    return Contract(cid, prov, role, start, end, ceiling, credits)


CAT = catalog([TEL, UNI, ODD], [
    department("mut-a", [con("A1", "telecom", credits=CREDITS), con("A2", "unicom", "backup", ceiling=0),
                         con("A3", "oddcloud", ceiling=700)], []),
    department("mut-b", [con("B1", "telecom", ceiling=500)], [])])


def held(cid="A1", op="telecom", dept="mut-a", start=NOV, end=None, vcpu=2, ram=4, disk=50, fip=1, req="r",
         zone="az1", rid=0):
    return b.HeldResource(dept, op, cid, req, "primary", zone, vcpu, ram, disk, fip, start, end, rid)


def bill_of(holdings, cid, dept="mut-a", evidence=None, month="2026-11", now=LATER):
    [d] = b.bills(CAT, holdings, month, evidence, department=dept, now=now)
    return d, next(c for c in d.contracts if c.contract == cid)


def evidence(good, bad, target=0.9995):
    return b.SlaEvidence(good, bad, 0, target, good / (good + bad), True, ("portal",))


# --------------------------------------------------------------------------- amounts
def test_a_whole_month_with_a_five_percent_credit_in_numbers():
    d, c = bill_of([held()], "A1", evidence={"A1": evidence(9992, 8)})          # 0.9992: below 0.9995 only
    [li] = c.lines
    assert (li.start, li.end, li.hours, li.monthly_price_cny, li.amount_fen, li.amount_cny) == \
        (NOV, DEC, 720.0, 150.0, 15000, 150.0)
    assert (c.gross_fen, c.gross_cny, c.credit_ratio, c.credit_fen, c.credit_cny, c.net_fen, c.net_cny) == \
        (15000, 150.0, 0.05, 750, 7.5, 14250, 142.5)
    assert (c.ceiling_used_ratio, c.over_ceiling) == (0.1425, False)
    assert (d.net_fen, d.net_cny) == (14250, 142.5)
    assert [(x.contract, x.net_fen) for x in d.contracts] == [("A1", 14250), ("A2", 0), ("A3", 0)]


def test_the_monthly_price_is_shown_to_the_fen_and_the_amount_rounded_once():
    _, c = bill_of([held("A3", "oddcloud", vcpu=1, ram=1, disk=1, fip=0)], "A3")
    [li] = c.lines
    assert li.monthly_price_cny == 2.33 and li.amount_fen == 233
    _, c = bill_of([held("A3", "oddcloud", vcpu=1, ram=1, disk=1, fip=0, end=NOV + dt.timedelta(hours=1, seconds=20))],
                   "A3")
    [li] = c.lines
    assert li.amount_fen == 0 and li.hours == pytest.approx(1.0055556)        # 2.333 x 3620 / 2592000 CNY


def test_ceiling_use_at_zero_at_the_ceiling_and_a_fen_over():
    exact = held("B1", dept="mut-b", vcpu=10, ram=20, disk=0, fip=0)            # 300 + 200 = 500 = the ceiling
    _, c = bill_of([exact], "B1", dept="mut-b")
    assert (c.net_fen, c.ceiling_used_ratio, c.over_ceiling) == (50000, 1.0, False)
    over = held("B1", dept="mut-b", vcpu=10, ram=20, disk=0.02, fip=0)          # + 0.01
    _, c = bill_of([over], "B1", dept="mut-b")
    assert c.net_fen == 50001 and c.over_ceiling
    _, c = bill_of([held("A2", "unicom")], "A2")                                 # ceiling 0: no ratio
    assert c.gross_fen == 2 * 2800 + 4 * 1200 + 50 * 45 + 2000 and (c.ceiling_used_ratio, c.over_ceiling) == (0.0, False)


def test_operator_totals_add_lines_credits_and_contracts():
    holdings = [held(), held(req="s", zone="az2", vcpu=4, ram=8, disk=100, fip=0), held("A2", "unicom"),
                held("B1", dept="mut-b")]
    all_bills = b.bills(CAT, holdings, "2026-11", {"A1": evidence(0, 1)}, now=LATER)       # A1: 15 %
    totals = {t.operator: (t.month, t.gross_fen, t.credit_fen, t.contracts, t.net_fen, t.net_cny)
              for t in b.operator_totals(all_bills)}
    a1 = 15000 + 25000                           # r 150, s 120 + 80 + 50 = 250
    assert totals == {"telecom": ("2026-11", a1 + 15000, 6000, 2, a1 + 15000 - 6000, 490.0),
                      "unicom": ("2026-11", 14650, 0, 1, 14650, 146.5),
                      "oddcloud": ("2026-11", 0, 0, 1, 0, 0.0)}
    assert b.operator_totals([]) == ()


# --------------------------------------------------------------------------- edges
@pytest.mark.parametrize("start, end, lines", [
    (NOV, NOV, 0),                                            # held for no time at all
    (NOV - dt.timedelta(days=3), NOV, 0),                     # released at the first instant of the month
    (DEC, None, 0),                                           # configured at the first instant of the next
    (DEC - dt.timedelta(seconds=1), None, 1),
    (NOV - dt.timedelta(days=3), NOV + dt.timedelta(seconds=1), 1),
])
def test_holdings_at_the_edges_of_the_month(start, end, lines):
    _, c = bill_of([held(start=start, end=end)], "A1")
    assert len(c.lines) == lines
    if lines:
        assert c.lines[0].hours == 1 / 3600 and c.lines[0].amount_fen == 0


def test_the_daily_split_follows_midnight():
    # held 36 hours from 29 Nov 12:00 into December: 7.50 CNY in November, 1/3 on the 29th, 2/3 on the 30th
    _, c = bill_of([held(start=dt.datetime(2026, 11, 29, 12, tzinfo=UTC), end=dt.datetime(2026, 12, 3, tzinfo=UTC))],
                   "A1")
    assert c.gross_fen == 750 and c.daily_fen == (("2026-11-29", 250), ("2026-11-30", 500))
    _, c = bill_of([held(start=dt.datetime(2026, 11, 30, tzinfo=UTC))], "A1")
    assert c.daily_fen == (("2026-11-30", 500),)
    _, c = bill_of([held(start=dt.datetime(2026, 11, 2, 6, tzinfo=UTC), end=dt.datetime(2026, 11, 4, tzinfo=UTC))],
                   "A1")
    assert c.daily_fen == (("2026-11-02", 375), ("2026-11-03", 500))
    line = c.lines[0]
    assert b.daily_split_fen(dataclasses.replace(line, end=line.start), NOV, DEC) == {}


def test_probe_samples_at_the_edges_of_the_month_and_per_day():
    def at(*a):
        return dt.datetime(*a, tzinfo=UTC)

    samples = [ProbeSample(at(2026, 10, 31, 23, 59), False), ProbeSample(NOV, True), ProbeSample(at(2026, 11, 1, 1), False),
               ProbeSample(at(2026, 11, 30, 23, 59), True), ProbeSample(DEC, False)]
    ev = b.evidence_from_samples({"web": samples, "api": []}, (), 0.999, NOV)
    assert (ev.good, ev.bad, ev.excluded, ev.availability_ratio, ev.has_data, ev.probes) == \
        (2, 1, 0, 2 / 3, True, ("api", "web"))
    assert ev.daily_availability == (("2026-11-01", 0.5), ("2026-11-30", 1.0))
    none = b.evidence_from_samples({"web": [ProbeSample(DEC, False)]}, (), 0.999, NOV)
    assert (none.has_data, none.availability_ratio, none.daily_availability) == (False, None, ())
    assert b.no_evidence(0.999) == b.SlaEvidence(0, 0, 0, 0.999, None, False)


@pytest.mark.parametrize("start, end, listed", [
    (dt.date(2026, 1, 1), dt.date(2026, 11, 1), True), (dt.date(2026, 1, 1), dt.date(2026, 10, 31), False),
    (dt.date(2026, 11, 30), dt.date(2027, 1, 1), True), (dt.date(2026, 12, 1), dt.date(2027, 1, 1), False),
    (dt.date(2026, 11, 10), dt.date(2026, 11, 12), True)])
def test_which_contracts_a_month_lists(start, end, listed):
    cat = catalog([TEL], [department("mut-c", [con("C", "telecom", start=start, end=end)], [])])
    got = b.bills(cat, [], "2026-11", now=LATER)
    assert (got != ()) is listed
    if listed:
        assert [c.contract for c in got[0].contracts] == ["C"]


# --------------------------------------------------------------------------- output forms
def test_bill_to_dict_and_csv_rows_exactly():
    h = held("A3", "oddcloud", vcpu=1, ram=1, disk=1, fip=0, start=dt.datetime(2026, 11, 10, tzinfo=UTC),
             end=dt.datetime(2026, 11, 10, 1, 0, 20, tzinfo=UTC), rid=7)
    big = held("A1", vcpu=0, ram=0, disk=0, fip=100)                              # 100 IPs: 2500 a month
    d, _ = bill_of([h, big], "A1", evidence={"A1": evidence(9995, 5)})           # exactly at the target
    data = b.bill_to_dict(d)
    assert (data["department"], data["display_name"], data["month"], data["to"], data["projected"],
            data["net_cny"]) == ("mut-a", "mut-a", "2026-11", "2026-12-01T00:00:00+00:00", False, 2500.0)
    a1, a2, a3 = data["contracts"]
    assert a1["sla"] == {"availability_ratio": 0.9995, "target_ratio": 0.9995, "has_probe_data": True,
                         "samples_good": 9995, "samples_bad": 5, "samples_in_maintenance": 0, "probes": ["portal"],
                         "breached": False}
    assert (a1["gross_cny"], a1["credit_ratio"], a1["credit_cny"], a1["ceiling_used_ratio"], a1["over_ceiling"]) == \
        (2500.0, 0.0, 0.0, 2.5, True)
    _, credited = bill_of([held()], "A1", evidence={"A1": evidence(9992, 8)})
    assert [r[-2] for r in b.csv_rows([b.DepartmentBill("mut-a", "mut-a", "2026-11", (credited,))])] == \
        ["150.00", "-7.50", "142.50"]
    assert {r[-1] for r in b.csv_rows([b.DepartmentBill("mut-a", "mut-a", "2026-11", (credited,))])} == {0}
    assert a2["sla"]["availability_ratio"] is None and a2["sla"]["breached"] is False
    assert a3["lines"] == [{"request_id": 7, "request": "r", "role": "primary", "zone": "az1", "vcpu": 1, "ram_gb": 1,
                            "disk_gb": 1, "floating_ips": 0, "start": "2026-11-10T00:00:00+00:00",
                            "end": "2026-11-10T01:00:20+00:00", "hours": 1.0056, "monthly_price_cny": 2.33,
                            "amount_cny": 0.0}]
    assert b.csv_rows([d]) == [
        ("2026-11", "mut-a", "A1", "telecom", "primary", "r", 0, "az1", 0, 0, 0, 100, "2026-11-01T00:00:00+00:00",
         "2026-12-01T00:00:00+00:00", 720.0, 2500.0, "2500.00", 0),
        ("2026-11", "mut-a", "A1", "telecom", "primary", "(sla credit)", "", "", "", "", "", "", "", "", "", "", "0.00", 0),
        ("2026-11", "mut-a", "A1", "telecom", "primary", "(net)", "", "", "", "", "", "", "", "", "", "", "2500.00", 0),
        ("2026-11", "mut-a", "A2", "unicom", "backup", "(sla credit)", "", "", "", "", "", "", "", "", "", "", "0.00", 0),
        ("2026-11", "mut-a", "A2", "unicom", "backup", "(net)", "", "", "", "", "", "", "", "", "", "", "0.00", 0),
        ("2026-11", "mut-a", "A3", "oddcloud", "primary", "r", 7, "az1", 1, 1, 1, 0, "2026-11-10T00:00:00+00:00",
         "2026-11-10T01:00:20+00:00", 1.0056, 2.33, "0.00", 0),
        ("2026-11", "mut-a", "A3", "oddcloud", "primary", "(sla credit)", "", "", "", "", "", "", "", "", "", "", "0.00", 0),
        ("2026-11", "mut-a", "A3", "oddcloud", "primary", "(net)", "", "", "", "", "", "", "", "", "", "", "0.00", 0)]
    ratio = b.bill_to_dict(bill_of([held("A3", "oddcloud", vcpu=100, ram=0, disk=0, fip=0)], "A3")[0])
    assert ratio["contracts"][2]["ceiling_used_ratio"] == 0.142857                 # 100 / 700


def test_breach_needs_data_below_the_target():
    assert b.sla_breached(evidence(9994, 6)) and not b.sla_breached(evidence(9995, 5))
    assert not b.sla_breached(b.SlaEvidence(0, 0, 0, 0.9995, 0.5, False))
    assert not b.sla_breached(b.no_evidence(0.9995))


def test_the_bill_records_are_frozen():
    _, c = bill_of([held()], "A1")
    d = b.bills(CAT, [held()], "2026-11", department="mut-a", now=LATER)[0]
    records = [c, c.lines[0], c.lines[0].held, c.sla, d, b.operator_totals([d])[0],
               b.InvoiceLine("A1", "vcpu", 1.0, 100, 2),
               b.Difference("A1", "vcpu", 0, 0, 0, 0, 0, 0, ""), b.ContractReconciliation("A1", "", "", 0, 0, ()),
               b.Reconciliation("2026-11", DEC, 100, ())]
    for r in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(r, dataclasses.fields(r)[0].name, None)
    assert held().request_id == b.HeldResource("d", "o", "c", "r", "primary", "z", 1, 1, 1, 0, NOV, None).request_id == 0


# --------------------------------------------------------------------------- reconcile
def _rec(text, holdings, operator=None, tolerance_fen=100, now=LATER, evidence=None):
    all_bills = b.bills(CAT, holdings, "2026-11", evidence, now=now)
    return b.reconcile(CAT, all_bills, b.parse_invoice_csv(text, "inv.csv"), "2026-11", operator=operator,
                       tolerance_fen=tolerance_fen)


# A1 holds 2 vCPU / 4 GB / 50 GB / 1 IP all November on telecom (30 / 10 / 0.5 / 25 per unit-month):
# 1440 vCPU-h = 60.00, 2880 GB-h = 40.00, 36000 GB-h = 25.00, 720 IP-h = 25.00 -> 150.00
A1_EXACT = "contract,resource,quantity,amount\nA1,vcpu,1440,60.00\nA1,ram_gb,2880,40.00\n" \
           "A1,disk_gb,36000,25.00\nA1,floating_ip,720,25.00\n"


def test_reconciliation_as_json_exactly():
    text = A1_EXACT.replace("A1,vcpu,1440,60.00", "A1,vcpu,1500,62.50") + "ZZ-9,vcpu,10,3.00\nZZ-9,ram_gb,5,1.25\n"
    r = _rec(text, [held()])
    data = b.reconciliation_to_dict(r)
    assert (data["month"], data["to"], data["tolerance_cny"], data["reconciled"]) == \
        ("2026-11", "2026-12-01T00:00:00+00:00", 1.0, False)
    a1, zz = data["contracts"]
    assert {k: a1[k] for k in ("contract", "department", "operator", "expected_cny", "invoiced_cny",
                               "difference_cny")} == \
        {"contract": "A1", "department": "mut-a", "operator": "telecom", "expected_cny": 150.0,
         "invoiced_cny": 152.5, "difference_cny": 2.5}
    assert a1["differences"] == [{"resource": "vcpu", "metered_quantity": 1440.0, "invoiced_quantity": 1500.0,
                                  "expected_cny": 60.0, "invoiced_cny": 62.5, "difference_cny": 2.5,
                                  "quantity_part_cny": 2.5, "price_part_cny": 0.0,
                                  "why": "quantity: invoiced 1,500.00 unit-hours, yunshang metered 1,440.00"}]
    assert zz == {"contract": "ZZ-9", "department": None, "operator": None, "expected_cny": 0.0, "invoiced_cny": 4.25,
                  "difference_cny": 4.25, "differences": [{
                      "resource": "*", "metered_quantity": 0.0, "invoiced_quantity": 15.0, "expected_cny": 0.0,
                      "invoiced_cny": 4.25, "difference_cny": 4.25, "quantity_part_cny": 0.0,
                      "price_part_cny": 0.0,
                      "why": "contract unknown to the catalog: nothing metered, nothing agreed"}]}
    price = _rec(A1_EXACT.replace("A1,ram_gb,2880,40.00", "A1,ram_gb,2880,43.00"), [held()])
    [d] = price.contracts[0].differences
    assert (d.quantity_fen, d.price_fen) == (0, 300)
    assert b.reconciliation_to_dict(price)["contracts"][0]["differences"][0]["price_part_cny"] == 3.0


def test_reconcile_per_operator_lists_what_metered_and_is_missing():
    holdings = [held(), held("B1", dept="mut-b"), held("A2", "unicom")]
    r = _rec(A1_EXACT, holdings, operator="telecom")
    assert [(c.contract, c.expected_fen, c.invoiced_fen) for c in r.contracts] == [("A1", 15000, 15000),
                                                                                   ("B1", 15000, 0)]
    assert [d.resource for d in r.contracts[1].differences] == ["vcpu", "ram_gb", "disk_gb", "floating_ip"]
    assert r.contracts[1].differences[0].why == "not on the invoice: yunshang metered 1,440.00 unit-hours"
    # a contract of the operator that metered nothing is not listed; another operator's never
    assert [c.contract for c in _rec(A1_EXACT, [held()], operator="telecom").contracts] == ["A1"]
    assert [c.contract for c in _rec(A1_EXACT, [held(), held("A2", "unicom")], operator="unicom").contracts] == \
        ["A1", "A2"]


def test_reconcile_credit_and_unmetered_lines():
    ev = {"A1": evidence(0, 1)}                                                 # 15 %: 22.50
    r = _rec(A1_EXACT + "A1,sla_credit,0,-22.50\n", [held()], evidence=ev)
    assert r.reconciled and r.contracts[0].expected_fen == 15000 - 2250
    r = _rec(A1_EXACT + "A1,sla_credit,0,-20.00\n", [held()], evidence=ev)
    [d] = r.contracts[0].differences
    assert (d.resource, d.quantity_fen, d.price_fen, d.expected_fen, d.invoiced_fen) == \
        ("sla_credit", 0, 250, -2250, -2000)
    # a resource yunshang never metered for the contract
    r = _rec("contract,resource,quantity,amount\nA3,vcpu,10,5.00\n", [held()])
    [d] = r.contracts[0].differences
    assert (d.metered_quantity, d.expected_fen, d.invoiced_fen) == (0, 0, 500)
    assert d.why.startswith("not metered by yunshang: invoiced 10.00 unit-hours")


def test_tolerance_is_inclusive():
    text = A1_EXACT.replace("A1,vcpu,1440,60.00", "A1,vcpu,1440,61.00")          # 1.00 over
    assert _rec(text, [held()], tolerance_fen=100).reconciled
    assert not _rec(text, [held()], tolerance_fen=99).reconciled


def test_invoice_problems_each_once_and_at_most_fifty():
    from yunshang.errors import InputInvalid

    with pytest.raises(InputInvalid) as e:
        b.parse_invoice_csv("contract,resource,quantity,amount\n bad id!,vcpu,1,-1.00\nA1,gpu,1,-1.00\n", "inv.csv")
    assert [(p.field, p.line) for p in e.value.problems] == [("contract", 2), ("resource", 3)]
    with pytest.raises(InputInvalid) as e:
        b.parse_invoice_csv("contract,resource,quantity,amount\nA1,vcpu,1,10000000000.00\nA1,vcpu,1,10000000000.01\n",
                            "inv.csv")
    assert [(p.field, p.line) for p in e.value.problems] == [("amount", 3)]
    many = "contract,resource,quantity,amount\n" + "A1,gpu,1,1.00\n" * 60
    with pytest.raises(InputInvalid) as e:
        b.parse_invoice_csv(many, "inv.csv")
    assert len(e.value.problems) == 51 and e.value.problems[-1].message == "more problems not shown"
    assert [li.line for li in b.parse_invoice_csv("contract,resource,quantity,amount\n" + "A1,vcpu,1,1.00\n" * 3,
                                                  "inv.csv")] == [2, 3, 4]


def test_a_projection_taken_at_the_month_end_is_not_marked_projected():
    [d] = b.bills(CAT, [held()], "2026-11", department="mut-a", now=DEC, projected=True)
    assert not d.projected and d.to == DEC
    [d] = b.bills(CAT, [held()], "2026-11", department="mut-a", now=DEC - dt.timedelta(seconds=1), projected=True)
    assert d.projected and d.to == DEC


def test_an_unknown_contract_first_does_not_hide_the_rest():
    r = _rec("contract,resource,quantity,amount\n00-X,vcpu,1,1.00\n" + A1_EXACT.split("\n", 1)[1], [held()])
    assert [(c.contract, bool(c.differences)) for c in r.contracts] == [("00-X", True), ("A1", False)]
