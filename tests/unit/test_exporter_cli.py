"""`yunshang exporter`: help teaches, bad input gives one clear line and a non-zero exit, nothing served."""
from __future__ import annotations

import pathlib

from click.testing import CliRunner

from cli.main import cli

CATALOG = str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "prefecture")


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_help_lists_serve_and_dump():
    r = run("exporter", "--help")
    assert r.exit_code == 0
    assert "serve" in r.output and "dump" in r.output and "yunshang_operator_up" in r.output


def test_serve_help_documents_sharding():
    r = run("exporter", "serve", "--help")
    assert r.exit_code == 0
    assert "--operator" in r.output and "--listen" in r.output and "one instance per operator" in r.output.lower()


def test_bad_listen_is_rejected():
    r = run("exporter", "serve", "--catalog", CATALOG, "--listen", "nonsense")
    assert r.exit_code == 2
    assert "HOST:PORT" in r.output


def test_unknown_operator_names_the_catalog():
    r = run("exporter", "dump", "--catalog", CATALOG, "--operator", "mobile", "--state-file", "")
    assert r.exit_code == 2
    assert "mobile" in r.output and "providers.yaml" in r.output and "telecom" in r.output


def test_missing_clouds_file(tmp_path):
    r = run("exporter", "dump", "--catalog", CATALOG, "--clouds", str(tmp_path / "nope.yaml"), "--state-file", "")
    assert r.exit_code == 2
    assert "nope.yaml" in r.output
