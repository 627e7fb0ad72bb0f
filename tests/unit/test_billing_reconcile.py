"""bill reconcile: yunshang's metering x contract prices x the operator's invoice (pure, exact values)."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang import billing as b
from yunshang.catalog import load_catalog
from yunshang.errors import InputInvalid

ROOT = Path(__file__).resolve().parents[2]
CAT = load_catalog(str(ROOT / "examples" / "prefecture"))
UTC = dt.timezone.utc
NOV, DEC = dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2026, 12, 1, tzinfo=UTC)
# health's WJ-2025-01 (unicom: vcpu 28, ram_gb 12, disk_gb 0.45, floating_ip 20 CNY/unit-month) held
# (4 vCPU, 8 GB, 80 GB, 1 IP) all November (720 h): 2880 vCPU-h = 112.00, 5760 GB-h = 96.00,
# 57600 GB-h = 36.00, 720 IP-h = 20.00 -> 264.00 CNY
EXACT = ("contract,resource,quantity,amount\n"
         "WJ-2025-01,vcpu,2880,112.00\nWJ-2025-01,ram_gb,5760,96.00\n"
         "WJ-2025-01,disk_gb,57600,36.00\nWJ-2025-01,floating_ip,720,20.00\n")


def held(start=NOV, end=None, contract="WJ-2025-01", op="unicom", dept="health"):
    return b.HeldResource(dept, op, contract, "his", "primary", "az1", 4, 8, 80, 1, start, end)


def rec(text, holdings=None, evidence=None, operator=None, tolerance_fen=100, now=DEC):
    bills = b.bills(CAT, [held()] if holdings is None else holdings, "2026-11", evidence=evidence, now=now)
    return b.reconcile(CAT, bills, b.parse_invoice_csv(text, "inv.csv"), "2026-11", tolerance_fen=tolerance_fen,
                       operator=operator)


def test_an_invoice_that_matches_reconciles():
    r = rec(EXACT)
    [c] = r.contracts
    assert r.reconciled and (c.contract, c.department, c.operator) == ("WJ-2025-01", "health", "unicom")
    assert (c.expected_fen, c.invoiced_fen, c.differences) == (26400, 26400, ())
    assert b.reconciliation_to_dict(r)["reconciled"] is True


def test_quantity_price_missing_unknown_and_credit_differences_exactly():
    text = ("contract,resource,quantity,amount,description\n"
            "WJ-2025-01,vcpu,3000,116.67,more vCPU-hours than metered\n"
            "WJ-2025-01,ram_gb,5760,100.00,a higher price\n"
            "WJ-2025-01,disk_gb,57600,36.00,ok\n"
            "WJ-2025-01,sla_credit,0,-5.00,a credit yunshang has no evidence for\n"
            "ZZ-404,vcpu,10,3.00,a contract nobody signed\n")
    r = rec(text)
    assert not r.reconciled
    c = next(x for x in r.contracts if x.contract == "WJ-2025-01")
    d = {x.resource: x for x in c.differences}
    assert set(d) == {"vcpu", "ram_gb", "floating_ip", "sla_credit"}          # disk agrees
    v = d["vcpu"]
    assert (v.metered_quantity, v.invoiced_quantity, v.expected_fen, v.invoiced_fen) == (2880, 3000, 11200, 11667)
    assert (v.quantity_fen, v.price_fen, v.difference_fen) == (467, 0, 467)
    assert v.why == "quantity: invoiced 3,000.00 unit-hours, yunshang metered 2,880.00"
    m = d["ram_gb"]
    assert (m.quantity_fen, m.price_fen, m.difference_fen) == (0, 400, 400)
    assert m.why == "price: charged 12.5000 CNY per unit-month, contract 12.0000"
    f = d["floating_ip"]
    assert (f.expected_fen, f.invoiced_fen, f.difference_fen, f.why) == (
        2000, 0, -2000, "not on the invoice: yunshang metered 720.00 unit-hours")
    s = d["sla_credit"]
    assert (s.expected_fen, s.invoiced_fen, s.difference_fen) == (0, -500, -500)
    assert (c.expected_fen, c.invoiced_fen, c.difference_fen) == (26400, 11667 + 10000 + 3600 - 500, -1633)
    z = next(x for x in r.contracts if x.contract == "ZZ-404")
    assert z.department == "" and z.invoiced_fen == 300 and "unknown to the catalog" in z.differences[0].why


def test_differences_within_the_tolerance_are_not_listed():
    off = EXACT.replace("WJ-2025-01,vcpu,2880,112.00", "WJ-2025-01,vcpu,2880,112.99")
    assert rec(off).reconciled                                   # 0.99 <= 1.00 CNY
    assert not rec(off.replace("112.99", "113.01")).reconciled   # 1.01 > 1.00
    [d] = rec(off, tolerance_fen=0).contracts[0].differences
    assert (d.resource, d.difference_fen, d.price_fen) == ("vcpu", 99, 99)


def test_sla_credit_compared_with_yunshangs_evidence():
    ev = {"WJ-2025-01": b.SlaEvidence(9980, 20, 0, 0.9995, 0.998, True)}        # 15 % of 264.00 = 39.60
    ok = EXACT + "WJ-2025-01,sla_credit,0,-39.60\n"
    assert rec(ok, evidence=ev).reconciled
    [d] = rec(EXACT + "WJ-2025-01,sla_credit,0,-13.20\n", evidence=ev).contracts[0].differences
    assert (d.resource, d.expected_fen, d.invoiced_fen, d.difference_fen) == ("sla_credit", -3960, -1320, 2640)
    [d] = rec(EXACT, evidence=ev).contracts[0].differences                      # credit owed, not given
    assert (d.resource, d.why) == ("sla_credit", "not on the invoice")


def test_with_operator_a_contract_missing_from_the_invoice_is_listed():
    fin = next(c for c in CAT.department("finance").contracts if c.provider == "unicom")
    hs = [held(), held(contract=fin.id, dept="finance")]
    r = rec(EXACT, holdings=hs, operator="unicom")
    c = next(x for x in r.contracts if x.contract == fin.id)
    assert c.invoiced_fen == 0 and c.expected_fen == 26400 and {d.resource for d in c.differences} == {
        "vcpu", "ram_gb", "disk_gb", "floating_ip"}
    assert all(d.why.startswith("not on the invoice") for d in c.differences)
    assert fin.id not in {x.contract for x in rec(EXACT, holdings=hs).contracts}     # without --operator


def test_partial_holding_and_month_to_date():
    half = held(start=dt.datetime(2026, 11, 16, tzinfo=UTC))                       # 15 days = 360 h
    text = ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1440,56.00\nWJ-2025-01,ram_gb,2880,48.00\n"
            "WJ-2025-01,disk_gb,28800,18.00\nWJ-2025-01,floating_ip,360,10.00\n")
    assert rec(text, holdings=[half]).reconciled
    r = rec(text, holdings=[half], now=dt.datetime(2026, 11, 23, 12, tzinfo=UTC))   # metered to the 23rd, 12:00
    assert r.to == dt.datetime(2026, 11, 23, 12, tzinfo=UTC)
    v = next(d for d in r.contracts[0].differences if d.resource == "vcpu")
    assert (v.metered_quantity, v.expected_fen) == (4 * 180, 2800)


def test_lines_for_the_same_resource_are_summed():
    text = EXACT.replace("WJ-2025-01,vcpu,2880,112.00", "WJ-2025-01,vcpu,2000,77.78\nWJ-2025-01,vcpu,880,34.22")
    assert rec(text).reconciled


# --------------------------------------------------------------------------- hostile invoices: refused, exit 2
BAD = [
    ("", "empty"),
    ("contract,resource,amount\nX,vcpu,1\n", "missing column(s) quantity"),
    ("contract,resource,quantity,amount,amount\n", "duplicate column(s) amount"),
    ("contract,resource,quantity,amount\nWJ-2025-01,gpu,1,1.00\n", "resource: expected one of vcpu"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1e3,1.00\n", "quantity: expected a plain decimal"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,inf,1.00\n", "quantity: expected a plain decimal"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,nan,1.00\n", "quantity: expected a plain decimal"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,-5,1.00\n", "quantity: expected a plain decimal"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,99999999999,1.00\n", "quantity: expected"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1,\"1,000.00\"\n", "amount: expected CNY"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1,1.001\n", "amount: expected CNY"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1,-1.00\n", "a charge cannot be negative"),
    ("contract,resource,quantity,amount\nWJ-2025-01,sla_credit,0,5.00\n", "an sla_credit line has quantity 0"),
    ("contract,resource,quantity,amount\nWJ 2025\n01,vcpu,1,1.00\n", "fields, the header has 4"),
    ("contract,resource,quantity,amount\n\"WJ-2025-01\nx\",vcpu,1,1.00\n", "contract: expected a contract id"),
    ("contract,resource,quantity,amount\n=cmd|' /C calc'!A0,vcpu,1,1.00\n", "contract: expected a contract id"),
    ("contract,resource,quantity,amount\nWJ-2025-01,vcpu,1,1.00\x00\n", "NUL bytes"),
    ("contract,resource,quantity,amount\n\"WJ-2025-01,vcpu,1,1.00\n", "not valid CSV"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_hostile_invoice_text_is_refused_clearly(text, message):
    with pytest.raises(InputInvalid, match="inv.csv") as e:
        b.parse_invoice_csv(text, "inv.csv")
    assert message in str(e.value)


def test_every_problem_is_reported_with_its_line():
    text = "contract,resource,quantity,amount\nWJ-2025-01,vcpu,1,1.00\nWJ-2025-01,gpu,1,1.00\nX,vcpu,x,1.00\n"
    with pytest.raises(InputInvalid) as e:
        b.parse_invoice_csv(text, "inv.csv")
    assert [(p.line, p.field) for p in e.value.problems] == [(3, "resource"), (4, "quantity")]


def test_bom_blank_lines_and_extra_columns_are_fine():
    lines = b.parse_invoice_csv("\ufeffContract,Resource,Quantity,Amount,Note\n\nWJ-2025-01,vcpu,1.5,0.06,x\n", "i")
    assert lines == (b.InvoiceLine("WJ-2025-01", "vcpu", 1.5, 6, 3),)


def test_too_many_rows_is_refused_quickly():
    text = "contract,resource,quantity,amount\n" + "WJ-2025-01,vcpu,1,1.00\n" * (b.INVOICE_MAX_ROWS + 5)
    with pytest.raises(InputInvalid, match="more than 100000 lines"):
        b.parse_invoice_csv(text, "inv.csv")


# --------------------------------------------------------------------------- the command
@pytest.fixture()
def empty_db(tmp_path):
    return "sqlite:///" + str(tmp_path / "l.db")


@pytest.fixture(autouse=True)
def auditor(monkeypatch):
    from tests.unit.people import act_as

    return act_as(monkeypatch, "center-auditor", "auditor")


def reconcile_cli(db, *args):
    return CliRunner().invoke(cli, ["bill", "reconcile", "--catalog", str(ROOT / "examples" / "prefecture"),
                                    "--db", db, "--month", "2026-11", "--at", "2026-12-05",
                                    "--os-cloud", "person-center-auditor", *args])


def test_cli_table_and_json(tmp_path, empty_db):
    inv = tmp_path / "inv.csv"
    inv.write_text("contract,resource,quantity,amount\nWJ-2025-01,vcpu,720,28.00\n", encoding="utf-8")
    r = reconcile_cli(empty_db, "--invoice", str(inv))
    assert r.exit_code == 0, r.output
    assert "NOT reconciled: 1 difference(s) above tolerance" in r.stdout
    assert "not metered by yunshang: invoiced 720.00 unit-hours" in r.stdout
    data = json.loads(reconcile_cli(empty_db, "--invoice", str(inv), "-o", "json").stdout)
    assert data["reconciled"] is False and data["tolerance_cny"] == 1.0
    [c] = data["contracts"]
    assert (c["contract"], c["expected_cny"], c["invoiced_cny"], c["difference_cny"]) == ("WJ-2025-01", 0, 28.0, 28.0)
    assert c["differences"][0]["quantity_part_cny"] == 28.0 and c["differences"][0]["price_part_cny"] == 0


@pytest.mark.parametrize("content,message", [
    (b"contract,resource,quantity,amount\nWJ-2025-01,vcpu,1e999,1\n", "quantity: expected a plain decimal"),
    (b"\xff\xfe c,r\n", "not UTF-8 text"),
    (b"x" * (b.INVOICE_MAX_BYTES + 1), "larger than 4 MiB"),
])
def test_cli_refuses_a_hostile_file_exit_2(tmp_path, empty_db, content, message):
    inv = tmp_path / "inv.csv"
    inv.write_bytes(content)
    r = reconcile_cli(empty_db, "--invoice", str(inv))
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output, r.output
    assert not os.path.exists(empty_db.removeprefix("sqlite:///"))          # refused before the store was opened


def test_cli_missing_file_and_directory_exit_2(tmp_path, empty_db):
    for path in (tmp_path / "nope.csv", tmp_path):
        r = reconcile_cli(empty_db, "--invoice", str(path))
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output


def test_the_use_case_is_a_center_task(tmp_path):
    from yunshang.authz import Identity, NotPermitted
    from yunshang.store import open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.bills import reconcile_invoice

    invoice = b.parse_invoice_csv(EXACT, "inv.csv")
    with open_store("sqlite:///" + str(tmp_path / "l.db")) as s:
        deps = Deps(s, CAT)
        head = Identity("u1", "health-head", frozenset({"department-head"}), "health")
        with pytest.raises(NotPermitted, match="covers every department"):
            reconcile_invoice(deps, head, "2026-11", invoice, now=DEC)
        auditor = Identity("u2", "center-auditor", frozenset({"auditor"}))
        r = reconcile_invoice(deps, auditor, "2026-11", invoice, now=DEC)
        assert not r.reconciled and r.contracts[0].expected_fen == 0 and r.contracts[0].invoiced_fen == 26400
        with pytest.raises(Exception, match="unknown operator 'nope'"):
            reconcile_invoice(deps, None, "2026-11", invoice, operator="nope", now=DEC)
