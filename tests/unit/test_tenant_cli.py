"""`yunshang tenant` bad input: one clear line, non-zero exit, nothing created (no cloud needed)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from plan_fixtures import record_plan_into  # noqa: E402

CAT = str(Path(__file__).resolve().parents[1] / "tenant" / "catalog")


@pytest.fixture(autouse=True)
def recorded_plan(tmp_path, monkeypatch):
    """A store of this test's own with the catalog's plan recorded (apply/verify consume it)."""
    return record_plan_into(tmp_path, monkeypatch, CAT)


def run(*args):
    return CliRunner().invoke(cli, list(args))


def one_line(r):
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


@pytest.mark.parametrize("args,code,text", [
    (("tenant", "apply", "nope", "--operator", "telecom"), 2, "unknown department 'nope'"),
    (("tenant", "apply", "ytest", "--operator", "mobile"), 2, "unknown operator 'mobile'"),
    (("tenant", "apply", "zbackup", "--operator", "telecom"), 2,
     "zbackup holds no contract with operator telecom valid on 2026-12-01"),
    (("tenant", "verify", "nope", "--operator", "telecom"), 2, "unknown department 'nope'"),
])
def test_bad_input_one_line(args, code, text, tmp_path):
    r = run(*args, "--catalog", CAT, "--date", "2026-12-01", "--clouds", str(tmp_path / "none.yaml"),
            "--state-dir", str(tmp_path)) if args[1] == "apply" else \
        run(*args, "--catalog", CAT, "--date", "2026-12-01", "--clouds", str(tmp_path / "none.yaml"))
    assert r.exit_code == code, r.output
    assert text in one_line(r)
    assert not (tmp_path / "journal").exists()


def test_unreachable_cloud(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  telecom:\n    auth: {auth_url: 'http://127.0.0.1:9/v3', username: u, password: "
                      "s3cret-value, project_name: p, user_domain_name: Default, project_domain_name: Default}\n"
                      "    identity_api_version: 3\n")
    r = run("tenant", "apply", "ytest", "--operator", "telecom", "--catalog", CAT, "--date", "2026-12-01",
            "--clouds", str(clouds), "--state-dir", str(tmp_path))
    assert r.exit_code == 4
    line = one_line(r)
    assert "cloud 'telecom'" in line and "s3cret-value" not in line
    assert not (tmp_path / "journal").exists()


def test_undefined_cloud(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    r = run("tenant", "verify", "ytest", "--operator", "telecom", "--catalog", CAT, "--date", "2026-12-01",
            "--clouds", str(clouds))
    assert r.exit_code == 4 and "not defined" in one_line(r)
