"""The alert and recording rules, checked and unit-tested by the real promtool."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "exporters" / "rules"


def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (make system-deps)")
    return exe


def test_rules_check_clean():
    r = subprocess.run([promtool(), "check", "rules", *map(str, sorted(RULES.glob("*.yml")))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_rules_unit_tests_pass():
    tests = sorted((RULES / "tests").glob("*_test.yml"))
    assert tests
    r = subprocess.run([promtool(), "test", "rules", *map(str, tests)], capture_output=True, text=True, cwd=RULES / "tests")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_unit_tests_can_fail(tmp_path):
    """A wrong expectation makes promtool fail (the harness is not vacuous)."""
    src = (RULES / "tests" / "yunshang_rules_test.yml").read_text()
    bad = src.replace("value: 0.01", "value: 0.02", 1)
    assert bad != src
    (tmp_path / "bad_test.yml").write_text(bad.replace("../yunshang.rules.yml", str(RULES / "yunshang.rules.yml")))
    r = subprocess.run([promtool(), "test", "rules", "bad_test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
