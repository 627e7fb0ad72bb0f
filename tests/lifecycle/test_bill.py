"""Bills from the store + SLA evidence from a REAL Prometheus; the HTML statement in headless Chromium."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from yunshang.usecases.bills import evidence_from_prometheus
from cli.main import cli
from tests.lifecycle.conftest import probe_value, sample_times
from yunshang import lifecycle as lc
from yunshang.catalog import load_catalog
from yunshang.store import PlacementRow, open_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")
UTC = dt.timezone.utc


class SetClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _seed(url):
    """health: a request configured 2026-11-03 08:00 and still held; one held 90 minutes on the 20th.
    finance: one held the whole month on telecom."""
    clock = SetClock(dt.datetime(2026, 11, 2, tzinfo=UTC))
    def doc(dept, name):
        return lc.parse_request_document({"department": dept, "requests": [
            {"name": name, "template": "web-standard", "size": "medium", "count": 2}]}, "f", default_mlps=3)

    with open_store(url, clock=clock) as s:
        def run(dept, name, rows, conf_at, recl_at=None):
            clock.t = conf_at - dt.timedelta(hours=1)
            r = s.submit(doc(dept, name), "dept")
            s.review(r.id, "li", rows)
            from yunshang.store import CapacityRow
            s.set_capacity([CapacityRow(p.provider, p.zone, 1e6, 1e6, 1e7) for p in rows], "ops")
            s.approve(r.id, "wang", "ok")
            clock.t = conf_at
            s.configure(r.id, "li", "sdk")
            if recl_at:
                clock.t = recl_at - dt.timedelta(minutes=1)
                s.plan_reclaim(r.id, "li", "done")
                clock.t = recl_at
                s.reclaim(r.id, "wang", "done")
        run("health", "portal", [PlacementRow("portal", "primary", "unicom", "WJ-2025-01", "az1", 2, 8, 16, 160, 2, 0),
                                 PlacementRow("portal", "standby", "telecom", "WJ-2025-02", "az1", 1, 4, 8, 80, 0, 0)],
            dt.datetime(2026, 11, 3, 8, tzinfo=UTC))
        run("health", "burst", [PlacementRow("burst", "primary", "unicom", "WJ-2025-01", "az2", 4, 64, 256, 400, 0, 0)],
            dt.datetime(2026, 11, 20, 9, tzinfo=UTC), dt.datetime(2026, 11, 20, 10, 30, tzinfo=UTC))
        fin = load_catalog(CATALOG).department("finance").contracts[0]
        run("finance", "ledger", [PlacementRow("ledger", "primary", fin.provider, fin.id, "az1", 2, 8, 16, 160, 1, 0)],
            dt.datetime(2026, 10, 1, tzinfo=UTC))
    return fin


CLOUDS = ""                          # the devcloud's clouds.yaml: bills are read as its center auditor


@pytest.fixture(scope="module", autouse=True)
def _center_auditor(devcloud):
    global CLOUDS
    CLOUDS = devcloud.clouds_file


def bill_cli(*args):
    r = CliRunner().invoke(cli, ["bill", *args, "--clouds", CLOUDS, "--os-cloud", "person-center-auditor"],
                           env={"YUNSHANG_CATALOG": CATALOG}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_sla_evidence_read_from_prometheus_excludes_maintenance(prometheus_month):
    cat = load_catalog(CATALOG)
    ev = evidence_from_prometheus(prometheus_month, cat, "2026-11", now=dt.datetime(2026, 11, 25, tzinfo=UTC))
    times = list(sample_times())
    down = sum(1 for t in times if probe_value("portal", t) == 0)
    primary = ev["WJ-2025-01"]                     # two probes; contract="" counts against the primary
    assert set(primary.probes) == {"unicom/health-portal", "unicom/regional-his"}
    assert down == 12 and (primary.good, primary.bad, primary.excluded) == (2 * len(times) - down, down, 0)
    assert primary.availability_ratio == pytest.approx(1 - down / (2 * len(times)))
    backup = ev["WJ-2025-02"]                      # failures only inside telecom's declared maintenance
    win = sum(1 for t in times if probe_value("backup", t) == 0)
    assert win == 48 and (backup.bad, backup.excluded, backup.availability_ratio) == (0, win, 1.0)


def test_bill_from_store_and_prometheus_reconciles(tmp_path, prometheus_month):
    db = "sqlite:///" + str(tmp_path / "l.db")
    fin = _seed(db)
    cat = load_catalog(CATALOG)
    data = json.loads(bill_cli("--month", "2026-11", "--db", db, "--prometheus", prometheus_month, "-o", "json"))
    health = next(d for d in data["departments"] if d["department"] == "health")
    prim = next(c for c in health["contracts"] if c["contract"] == "WJ-2025-01")
    unicom = cat.provider("unicom").prices
    month_s = 30 * 86400
    held_s = (dt.datetime(2026, 12, 1, tzinfo=UTC) - dt.datetime(2026, 11, 3, 8, tzinfo=UTC)).total_seconds()
    expect_portal = round(unicom.monthly_cny(8, 16, 160, 2) * held_s / month_s, 2)
    expect_burst = round(unicom.monthly_cny(64, 256, 400, 0) * 5400 / month_s, 2)
    amounts = {li["request"]: li["amount_cny"] for li in prim["lines"]}
    assert amounts == {"portal": expect_portal, "burst": expect_burst}
    assert [li["hours"] for li in prim["lines"] if li["request"] == "burst"] == [1.5]
    # unicom: 12 failed of 2 x 1440 samples = 0.99583 -> below 0.999 -> the 15 % credit tier
    assert prim["sla"]["has_probe_data"] and prim["sla"]["availability_ratio"] == pytest.approx(1 - 12 / 2880)
    assert prim["credit_ratio"] == 0.15
    assert prim["credit_cny"] == pytest.approx(round(prim["gross_cny"] * 0.15, 2), abs=0.011)
    assert prim["net_cny"] == pytest.approx(prim["gross_cny"] - prim["credit_cny"], abs=1e-9)
    fin_c = next(c for d in data["departments"] if d["department"] == "finance" for c in d["contracts"]
                 if c["contract"] == fin.id)
    assert fin_c["lines"][0]["hours"] == 720 and fin_c["sla"]["has_probe_data"] is False
    for op in data["operators"]:
        dept_sum = sum(c["net_cny"] for d in data["departments"] for c in d["contracts"] if c["operator"] == op["operator"])
        assert round(dept_sum, 2) == round(op["net_cny"], 2)
    # csv: line rows sum to the gross, the net rows to the JSON's
    rows = list(csv.DictReader(io.StringIO(bill_cli("--month", "2026-11", "--db", db, "--department", "health",
                                                    "--prometheus", prometheus_month, "-o", "csv"))))
    assert round(sum(float(r["amount_cny"]) for r in rows if r["request"] == "(net)"), 2) == round(
        sum(c["net_cny"] for c in health["contracts"]), 2)
    table = bill_cli("--month", "2026-11", "--db", db)
    assert "WJ-2025-01" in table and "operator" in table


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


def test_html_statement_renders_in_headless_chromium(tmp_path, prometheus_month):
    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("chromium missing: run `bash tools/system-deps.sh` (Debian package chromium)")
    db = "sqlite:///" + str(tmp_path / "l.db")
    _seed(db)
    page = tmp_path / "health.html"
    bill_cli("--month", "2026-11", "--db", db, "--department", "health", "--prometheus", prometheus_month,
             "-o", "html", "--out", str(page))
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                        f"--screenshot={shot}", "--window-size=820,2400", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000, r.stderr[-2000:]
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Refused to" in ln or "ERR_" in ln]
    assert console == [], console
    dom = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 3 and "卫健委" in dom and "WJ-2025-01" in dom
    # the PNG is not blank: more than a handful of distinct byte values in the image data
    assert len(set(shot.read_bytes()[200:20000])) > 50
    # all departments at once: a directory of pages
    out = tmp_path / "all"
    bill_cli("--month", "2026-11", "--db", db, "-o", "html", "--out", str(out))
    assert len(list(out.glob("*.html"))) == len(load_catalog(CATALOG).departments)
