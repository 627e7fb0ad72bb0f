"""The report's HTML page rendered by headless Chromium: charts drawn, no console error, nothing fetched.
The report is read as the center's auditor of the devcloud's Keystone."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from cli.main import cli  # noqa: E402
from test_report import AT, SAMPLE, db  # noqa: E402,F401  (fixture)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


def test_report_page_renders_in_headless_chromium(db, tmp_path, devcloud):  # noqa: F811
    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("chromium missing: run `bash tools/system-deps.sh` (Debian package chromium)")
    page = tmp_path / "report.html"
    r = CliRunner().invoke(cli, ["report", "--catalog", SAMPLE, "--db", db, "--month", "2026-11", "--at", AT,
                                 "-o", "html", "--out", str(page),
                                 "--clouds", devcloud.clouds_file, "--os-cloud", "person-center-auditor"])
    assert r.exit_code == 0, r.output
    shot, profile = tmp_path / "shot.png", tmp_path / "profile"
    res = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                          f"--screenshot={shot}", "--window-size=1150,2200", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line or "ERR_" in line]
    assert console == [], console
    dom = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 3 and "桃江县" in dom and "浮邱山乡" in dom and "xian-taojiang-health" in dom
    assert dom.count("<rect") >= 10                      # the bars are there (one per site and chart)
    assert len(set(shot.read_bytes()[200:20000])) > 50   # not a blank image
