"""`yunshang catalog validate|show` through click's CliRunner."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from catalog_fixtures import write_catalog
from cli.main import cli

SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_sample_ok():
    r = run("catalog", "validate", "--catalog", SAMPLE)
    assert r.exit_code == 0, r.output
    assert "is valid: 4 providers, 19 departments" in r.output


def test_validate_json_ok():
    r = run("catalog", "validate", "--catalog", SAMPLE, "--output", "json")
    data = json.loads(r.output)
    assert data["valid"] is True and data["providers"] == 4 and data["problems"] == []


def _broken(tmp_path):
    root = write_catalog(tmp_path / "cat")
    p = root / "providers.yaml"
    p.write_text(p.read_text().replace("vcpu: 4.0", "vcpu: 0.5"))
    d = root / "departments" / "health.yaml"
    d.write_text(d.read_text().replace("provider: govcloud", "provider: unicorn"))
    return root


def test_validate_bad_catalog_lists_every_problem_exit_2(tmp_path):
    root = _broken(tmp_path)
    r = CliRunner().invoke(cli, ["catalog", "validate", "--catalog", str(root)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert "catalog invalid: 2 problems" in r.output
    assert "providers[0].zones[0].overcommit.vcpu" in r.output
    assert "contracts[1].provider: unknown provider 'unicorn'" in r.output


def test_validate_bad_catalog_json(tmp_path):
    r = CliRunner().invoke(cli, ["catalog", "validate", "--catalog", str(_broken(tmp_path)), "-o", "json"])
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["valid"] is False and len(data["problems"]) == 2
    assert {p["field"] for p in data["problems"]} == {"providers[0].zones[0].overcommit.vcpu", "contracts[1].provider"}
    assert all(isinstance(p["line"], int) for p in data["problems"])


def test_validate_missing_directory(tmp_path):
    r = CliRunner().invoke(cli, ["catalog", "validate", "--catalog", str(tmp_path / "none")])
    assert r.exit_code == 2 and "catalog directory" in r.output


def test_show_table_and_json():
    r = run("catalog", "show", "--catalog", SAMPLE)
    assert r.exit_code == 0
    assert "govcloud" in r.output and "公安局" in r.output and "GA-2026-01" in r.output and "web-standard" in r.output
    data = json.loads(run("catalog", "show", "--catalog", SAMPLE, "-o", "json").output)
    assert [p["name"] for p in data["providers"]] == ["telecom", "unicom", "govcloud", "cmcc"]
    ps = next(d for d in data["departments"] if d["name"] == "public-security")
    assert ps["contracts"][0]["start"] == "2026-01-01" and ps["cidr_index"] >= 1
    assert data["templates"]["web-standard"]["sizes"]["large"] == {"vcpu": 8, "ram_gb": 16, "disk_gb": 100}


def test_help_teaches():
    r = run("catalog", "--help")
    assert "validate" in r.output and "providers.yaml" in r.output
