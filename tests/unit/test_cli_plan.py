"""`yunshang plan` through click's CliRunner."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from catalog_fixtures import write_catalog
from cli.main import cli

SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_plan_table_for_people():
    r = run("plan", "--catalog", SAMPLE, "--date", "2026-11-26")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Plan for 2026-11-26" in out
    assert "== public-security 公安局" in out
    assert "cheapest allowed operator" in out
    assert "Unplaced (2):" in out and "ceiling: contract SJ-2026-01 ceiling 25000 CNY/month" in out
    assert "Zone utilisation" in out and "Total:" in out
    assert "contracts: WL-2026-01 unicom primary 14,018 of 30,000; WL-2027-02 telecom backup 0 of 15,000 " \
           "(not valid on 2026-11-26: 2027-01-01..2028-12-31)" in out


def test_plan_json_schema_and_date_matters():
    r = run("plan", "--catalog", SAMPLE, "--date", "2026-11-26", "--output", "json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert data["date"] == "2026-11-26"
    assert set(data) == {"date", "placements", "unplaced", "utilization", "total_monthly_cost_cny"}
    assert isinstance(data["placements"][0]["zones"], dict)
    civil = [p for p in data["placements"] if p["department"] == "civil-affairs"]
    assert civil and all(p["provider"] == "unicom" for p in civil)     # the telecom contract expired
    later = json.loads(run("plan", "--catalog", SAMPLE, "--date", "2027-03-01", "-o", "json").output)
    agri = [p for p in later["placements"] if p["department"] == "agriculture-rural"]
    assert agri and all(p["provider"] == "telecom" for p in agri)      # the renewal with telecom


def test_plan_bad_catalog_exit_2_without_traceback(tmp_path):
    root = write_catalog(tmp_path / "cat")
    d = root / "departments" / "health.yaml"
    d.write_text(d.read_text().replace("end: 2027-12-31", "end: 2020-01-01"))
    r = run("plan", "--catalog", str(root))
    assert r.exit_code == 2
    assert "end before start" in r.output and "Traceback" not in r.output


def test_plan_bad_date():
    r = run("plan", "--catalog", SAMPLE, "--date", "26/11/2026")
    assert r.exit_code == 2 and ("YYYY-MM-DD" in r.output or "%Y-%m-%d" in r.output)
