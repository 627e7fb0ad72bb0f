"""`yunshang capacity show` input errors (no cloud needed)."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import cli

CATALOG = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")


def test_unknown_operator_is_named(tmp_path):
    r = CliRunner().invoke(cli, ["capacity", "show", "--catalog", CATALOG, "--operator", "nosuchop",
                                 "--clouds", str(tmp_path / "clouds.yaml")])
    assert r.exit_code == 2
    assert "nosuchop" in r.output and "telecom" in r.output


def test_missing_clouds_file_marks_every_operator(tmp_path):
    r = CliRunner().invoke(cli, ["capacity", "show", "--catalog", CATALOG, "--operator", "telecom",
                                 "--clouds", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 4
    assert "UNREACHABLE" in r.output and "missing.yaml" in r.output
