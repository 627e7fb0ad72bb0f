"""`takeover plan` with its trigger data read from a REAL Prometheus (backfilled exporter series)."""
from __future__ import annotations

import json
import os

from click.testing import CliRunner

from cli.main import cli
from cli.takeover import read_trigger_inputs
from tests.lifecycle.conftest import PROBE_END, UNICOM_DOWN_FROM
from yunshang import takeover as tk
from yunshang.catalog import load_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = os.path.join(ROOT, "examples", "prefecture")


def test_triggers_from_prometheus(prometheus_month):
    cat = load_catalog(CATALOG)
    up, breached = read_trigger_inputs(prometheus_month, "unicom", PROBE_END, 2)
    assert breached == {"WJ-2025-01": [True, True]}
    assert tk.down_seconds(up, PROBE_END) == (PROBE_END - UNICOM_DOWN_FROM).total_seconds()
    trig = {t.name: t for t in tk.evaluate_triggers(cat, "unicom", PROBE_END, up, breached, 2)}
    assert trig["operator-down"].fired and "50.0 min (RTO 30 min)" in trig["operator-down"].detail
    assert trig["sla-breached"].fired
    up_t, _ = read_trigger_inputs(prometheus_month, "telecom", PROBE_END, 2)
    assert tk.down_seconds(up_t, PROBE_END) == 0.0


def test_plan_cli_moves_unicom_departments_to_their_backups(prometheus_month):
    r = CliRunner().invoke(cli, ["takeover", "plan", "--operator", "unicom", "--prometheus", prometheus_month,
                                 "--at", PROBE_END.strftime("%Y-%m-%dT%H:%M:%S"), "-o", "json"],
                           env={"YUNSHANG_CATALOG": CATALOG}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["triggered"] and {t["name"] for t in plan["triggers"] if t["fired"]} == {"operator-down", "sla-breached"}
    health = next(m for m in plan["moves"] if m["department"] == "health")
    assert health["to_operator"] == "telecom" and health["backup_contract"] == "WJ-2025-02"
    assert {d["how"] for d in health["data"]} >= {"promote-standby"}
    # the sample's backup contract is too small for health's non-dr systems: the plan says so
    assert not health["capacity_ok"] and any("ceiling" in p for p in health["problems"])
    hr = next(m for m in plan["moves"] if m["department"] == "human-resources-social-security")
    assert hr["capacity_ok"] and hr["to_operator"] == "telecom"
    movable = [m["order"] for m in plan["moves"] if m["backup_contract"]]
    assert movable == list(range(1, len(movable) + 1))      # those that can move come first
    text = CliRunner().invoke(cli, ["takeover", "plan", "--operator", "unicom", "--prometheus", prometheus_month,
                                    "--at", PROBE_END.strftime("%Y-%m-%dT%H:%M:%S")],
                              env={"YUNSHANG_CATALOG": CATALOG}).output
    assert "[FIRED] operator-down" in text and "health" in text
    quiet = CliRunner().invoke(cli, ["takeover", "plan", "--operator", "unicom", "--prometheus", prometheus_month,
                                     "--at", "2026-11-12T00:00:00"], env={"YUNSHANG_CATALOG": CATALOG})
    assert "[FIRED] sla-breached" in quiet.output          # breach history still counts; the API was up then
    assert "[  -  ] operator-down" in quiet.output
