"""`yunshang bill` to date and --projected, through click's runner on a SQLite store (no services)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang import lifecycle as lc
from yunshang.store import CapacityRow, PlacementRow, open_store

SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")
UTC = dt.timezone.utc


class SetClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture()
def db(tmp_path) -> str:
    """health: 2 x (4 vCPU, 8 GB, 80 GB, 1 FIP) on unicom configured 2026-11-01 00:00 and still held."""
    url = "sqlite:///" + str(tmp_path / "l.db")
    clock = SetClock(dt.datetime(2026, 10, 31, 22, tzinfo=UTC))
    doc = lc.parse_request_document({"department": "health", "requests": [
        {"name": "portal", "template": "web-standard", "size": "medium", "count": 2}]}, "f", default_mlps=3)
    rows = [PlacementRow("portal", "primary", "unicom", "WJ-2025-01", "az1", 2, 8, 16, 160, 2, 0)]
    with open_store(url, clock=clock) as s:
        r = s.submit(doc, "dept")
        s.review(r.id, "li", rows)
        s.set_capacity([CapacityRow("unicom", "az1", 1e6, 1e6, 1e7)], "ops")
        s.approve(r.id, "wang", "ok")
        clock.t = dt.datetime(2026, 11, 1, tzinfo=UTC)
        s.configure(r.id, "li", "sdk")
    return url


@pytest.fixture(autouse=True)
def auditor(monkeypatch):
    from tests.unit.people import act_as

    return act_as(monkeypatch, "center-auditor", "auditor")


def run(db, *args, person="person-center-auditor"):
    return CliRunner().invoke(cli, ["bill", "--catalog", SAMPLE, "--db", db, "--department", "health",
                                    "--os-cloud", person, *args])


def test_a_department_head_reads_only_its_department_and_no_person_reads_nothing(db, monkeypatch, tmp_path):
    from tests.unit.people import act_as

    r = CliRunner().invoke(cli, ["bill", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at",
                                 "2026-11-01T10:00", "-o", "json"])
    assert r.exit_code == 2 and "--os-cloud" in r.output and "health" not in r.output
    act_as(monkeypatch, "finance-head", "department-head", department="finance")
    r = CliRunner().invoke(cli, ["bill", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at",
                                 "2026-11-01T10:00", "-o", "json", "--os-cloud", "person-finance-head"])
    assert r.exit_code == 0, r.output
    assert [d["department"] for d in json.loads(r.stdout)["departments"]] == ["finance"]
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00", "-o", "json", person="person-finance-head")
    assert r.exit_code == 2 and "another department" in r.output and "WJ-2025-01" not in r.output
    inv = tmp_path / "inv.csv"
    inv.write_text("contract,resource,quantity,amount\nWJ-2025-01,vcpu,720,28.00\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["bill", "reconcile", "--catalog", SAMPLE, "--db", db, "--month", "2026-11",
                                 "--invoice", str(inv), "--os-cloud", "person-finance-head"])
    assert r.exit_code == 2 and "may not reconcile" in r.output and "WJ-2025-01" not in r.output


def _primary(data):
    return next(c for c in data["departments"][0]["contracts"] if c["contract"] == "WJ-2025-01")


def test_on_the_first_at_ten_the_bill_charges_ten_hours(db):
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00", "-o", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["to"] == "2026-11-01T10:00:00+00:00" and data["projected"] is False
    c = _primary(data)
    assert [li["hours"] for li in c["lines"]] == [10]
    assert c["gross_cny"] == 7.33                       # (8x28 + 16x12 + 160x0.45 + 2x20) = 528/month x 10/720
    assert c["sla"]["availability_ratio"] is None and c["credit_cny"] == 0


def test_projected_is_the_forecast_to_month_end(db):
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00", "--projected", "-o", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["projected"] is True and data["departments"][0]["projected"] is True
    assert data["to"] == "2026-12-01T00:00:00+00:00"
    c = _primary(data)
    assert [li["hours"] for li in c["lines"]] == [720] and c["gross_cny"] == 528.0


def test_table_and_statement_say_to_when(db, tmp_path):
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00")
    assert r.exit_code == 0 and r.stdout.startswith("Bill 2026-11, to 2026-11-01 10:00 UTC (month not over)")
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00", "--projected")
    assert r.stdout.startswith("Bill 2026-11, PROJECTED to month end 2026-12-01 00:00 UTC")
    page = tmp_path / "s.html"
    r = run(db, "--month", "2026-11", "--at", "2026-11-01T10:00", "-o", "html", "--out", str(page))
    html = page.read_text(encoding="utf-8")
    assert r.exit_code == 0 and "to 2026-11-01 10:00 UTC (month not over" in html and "PROJECTED" not in html
    r = run(db, "--month", "2026-11", "--at", "2026-12-03T00:00")
    assert r.stdout.startswith("Bill 2026-11, to 2026-12-01 00:00 UTC\n")


def test_a_month_not_begun_is_refused_to_date_but_can_be_projected(db):
    r = run(db, "--month", "2026-12", "--at", "2026-11-20T00:00")
    assert r.exit_code == 2 and "2026-12 has not begun" in r.stderr and "Traceback" not in r.output
    r = run(db, "--month", "2026-12", "--at", "2026-11-20T00:00", "--projected", "-o", "json")
    assert r.exit_code == 0 and _primary(json.loads(r.stdout))["gross_cny"] == 528.0
