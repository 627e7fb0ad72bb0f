"""Canary secrets through every command's failure path: none reaches stdout, stderr, a file or the store.

Each canary is a unique string placed where a secret lives: a DSN's password (URL userinfo, ``?password=``),
a Prometheus URL's userinfo and query, clouds.yaml passwords, tokens and auth_url userinfo, and probe
targets of request documents and catalogs. Every command runs in-process (click's runner) against
endpoints that refuse (127.0.0.1:1), and everything it produced is searched for every canary:
stdout, stderr, the exception it ended with (and its traceback), files written under the scratch
directory (reports, HTML statements, evidence, metrics, the SQLite store itself, byte for byte).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "prefecture"
CANARIES = {
    "pg_userinfo": "CanaryPgUserinfo7Q", "pg_query": "CanaryPgQuery3W", "pg_keyword": "CanaryPgPercent%zz",
    "prom_userinfo": "CanaryPromUser5E", "prom_query": "CanaryPromQuery2R",
    "cloud_password": "CanaryCloudPw9T", "cloud_authurl": "CanaryAuthUrl4Y", "cloud_token": "CanaryCloudTok8U",
    "cloud_authurl_query": "CanaryAuthQuery1I", "probe_userinfo": "CanaryProbeUser6O", "probe_query": "CanaryProbeQ0P",
    "catalog_probe": "CanaryCatalogProbe5A",
}
C = CANARIES
DEAD = "127.0.0.1:1"                 # connection refused at once


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("secrets")
    (d / "clouds.yaml").write_text(f"""clouds:
  telecom:
    auth:
      auth_url: http://keystone:{C['cloud_authurl']}@{DEAD}/v3
      username: admin
      password: {C['cloud_password']}
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
  unicom:
    auth_type: token
    auth:
      auth_url: http://{DEAD}/v3?token={C['cloud_authurl_query']}
      token: {C['cloud_token']}
      project_name: admin
  mobile:
    auth:
      auth_url: http://{DEAD}/v3
      username: admin
      password: {C['cloud_password']}
  person-canary:
    auth:
      auth_url: http://keystone:{C['cloud_authurl']}@{DEAD}/v3
      username: canary
      password: {C['cloud_password']}
      project_name: center
      user_domain_name: Default
      project_domain_name: Default
""", encoding="utf-8")
    # a catalog whose department publishes a probe with credentials in its URL
    cat = d / "catalog"
    shutil.copytree(SAMPLE, cat)
    health = cat / "departments" / "health.yaml"
    text = health.read_text(encoding="utf-8")
    assert "\nprobes:" in text
    text = text.replace("\nprobes:\n", f"\nprobes:\n  - {{name: canary-svc, kind: http, target: "
                                       f"\"http://svc:{C['catalog_probe']}@{DEAD}/health\"}}\n", 1)
    health.write_text(text, encoding="utf-8")
    (d / "request.yaml").write_text(f"""department: health
title: canary
requests:
  - {{name: vaccine-booking, template: web-standard, size: medium, count: 1}}
probes:
  - {{name: vaccine-booking, kind: http, target: "http://svc:{C['probe_userinfo']}@{DEAD}/x?token={C['probe_query']}"}}
""", encoding="utf-8")
    (d / "bad-request.yaml").write_text(f"""department: health
title: canary
requests:
  - {{name: vaccine-booking, template: web-standard, size: medium, count: 0}}
probes:
  - {{name: p, kind: "http://svc:{C['probe_userinfo']}@{DEAD}/", target: "https://u:{C['probe_userinfo']}@h/"}}
""", encoding="utf-8")
    return d


def _commands(d: Path) -> list[list[str]]:
    cat, clouds, db = str(d / "catalog"), str(d / "clouds.yaml"), f"sqlite:///{d / 'lifecycle.db'}"
    pg = [f"postgresql://:{C['pg_userinfo']}@{DEAD}/ys", f"postgresql://ys@{DEAD}/ys?password={C['pg_query']}",
          f"postgresql://ys:{C['pg_keyword']}@{DEAD}/ys", f"postgresql://ys:{C['pg_userinfo']}@{DEAD}:port/ys",
          f"sqlite://u:{C['pg_userinfo']}@x", f"mysql://u:{C['pg_userinfo']}@x/y"]
    prom = [f"http://u:{C['prom_userinfo']}@{DEAD}", f"http://{DEAD}/?token={C['prom_query']}",
            f"http://u:{C['prom_userinfo']}@127.0.0.1:x", f"http://u:{C['prom_userinfo']}@[bad"]
    ops = ["--operator", "telecom", "--operator", "unicom"]
    cmds: list[list[str]] = []
    for url in pg:
        cmds += [["request", "--db", url, "list", "--os-cloud", "person-canary"],
                 ["request", "--db", url, "log", "-o", "json", "--os-cloud", "person-canary"],
                 ["request", "--db", url, "submit", str(d / "request.yaml"), "--os-cloud", "person-canary", "--catalog", cat],
                 ["bill", "--month", "2026-11", "--catalog", cat, "--db", url, "--os-cloud", "person-canary"],
                 ["takeover", "plan", "--operator", "telecom", "--catalog", cat, "--db", url, "--os-cloud", "person-canary"]]
    for url in prom:
        cmds += [["bill", "--month", "2026-11", "--catalog", cat, "--db", db, "--prometheus", url, "--os-cloud", "person-canary"],
                 ["bill", "--month", "2026-11", "--catalog", cat, "--db", db, "--prometheus", url, "-o", "json",
                  "--os-cloud", "person-canary"],
                 ["request", "--db", db, "reclaim", "--catalog", cat, "--idle-days", "3", "--prometheus", url,
                  "--os-cloud", "person-canary"],
                 ["request", "--db", db, "monitor", "1", "--prometheus", url, "--os-cloud", "person-canary"],
                 ["takeover", "plan", "--operator", "telecom", "--catalog", cat, "--db", db, "--prometheus", url,
                  "--os-cloud", "person-canary"]]
    cmds += [
        ["request", "--db", db, "submit", str(d / "bad-request.yaml"), "--os-cloud", "person-canary", "--catalog", cat],
        ["request", "--db", db, "submit", str(d / "request.yaml"), "--os-cloud", "person-canary", "--catalog", cat],
        ["request", "--db", db, "show", "1", "-o", "json", "--os-cloud", "person-canary"],
        ["request", "--db", db, "show", "1", "--os-cloud", "person-canary"],
        ["request", "--db", db, "log", "--os-cloud", "person-canary"],
        ["request", "--db", db, "log", "-o", "json", "--os-cloud", "person-canary"],
        ["request", "--db", db, "review", "1", "--catalog", cat, "--clouds", clouds, "--os-cloud", "person-canary"],
        ["request", "--db", db, "reject", "1", "--os-cloud", "person-canary", "--reason", f"see postgresql://u:{C['pg_userinfo']}@h/db"],
        ["catalog", "show", "--catalog", cat, "-o", "json"], ["catalog", "validate", "--catalog", cat],
        ["capacity", "show", "--catalog", cat, "--clouds", clouds, *ops],
        ["capacity", "show", "--catalog", cat, "--clouds", clouds, *ops, "-o", "json"],
        ["plan", "--catalog", cat, "--live", "--clouds", clouds, "-o", "json"],
        ["tenant", "verify", "health", "--operator", "telecom", "--catalog", cat, "--clouds", clouds],
        ["tenant", "apply", "health", "--operator", "unicom", "--catalog", cat, "--clouds", clouds],
        ["tenant", "verify", "health", "--operator", "unicom", "--catalog", cat, "--clouds", clouds, "-o", "json"],
        ["compliance", "check", "--department", "health", *ops, "--catalog", cat, "--clouds", clouds,
         "--out", str(d / "compliance.json")],
        ["exporter", "dump", "--catalog", cat, "--clouds", clouds, *ops, "--state-file", str(d / "probes.json")],
        ["takeover", "drill", "--from", "telecom", "--to", "unicom", "--catalog", cat, "--clouds", clouds,
         "--db", db, "--evidence", str(d / "drill.json"), "--os-cloud", "person-canary"],
        ["bill", "--month", "2026-11", "--catalog", cat, "--db", db, "-o", "html", "--out", str(d / "html"),
         "--os-cloud", "person-canary"],
        ["bill", "--month", "2026-11", "--catalog", cat, "--db", db, "-o", "csv", "--out", str(d / "bill.csv"),
         "--os-cloud", "person-canary"],
        # a secret pasted into the wrong option: click's usage error quotes the value it refused
        ["bill", "--month", "2026-11", "--catalog", cat, "--db", db, "--at", f"http://u:{C['pg_userinfo']}@h"],
        ["request", "--db", db, "show", f"postgresql://u:{C['pg_userinfo']}@h/db"],
        ["bill", "reconcile", "--month", "2026-11", "--catalog", cat, "--db", db,
         "--invoice", f"http://u:{C['prom_userinfo']}@h/inv.csv"],
    ]
    return cmds


def _leaks(text: str) -> list[str]:
    return [k for k, v in CANARIES.items() if v in text or v.replace("%", "%25") in text]


def test_no_canary_secret_in_any_output_file_or_store_row(scratch, monkeypatch):
    monkeypatch.setenv("YUNSHANG_STATE_DIR", str(scratch / "state"))
    monkeypatch.setenv("YUNSHANG_ACTOR", "canary-tester")
    for k in [k for k in os.environ if k.startswith(("OS_", "YUNSHANG_DB", "YUNSHANG_PROMETHEUS"))]:
        monkeypatch.delenv(k, raising=False)
    # the person acting (--os-cloud person-canary) is in the scratch clouds.yaml, its Keystone refuses;
    # the one stored request is submitted through the store (the CLI's submit needs a live Keystone)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(scratch / "clouds.yaml"))
    from yunshang.catalog import load_catalog
    from yunshang.lifecycle import parse_request_document
    from yunshang.store import open_store

    import yaml

    doc = parse_request_document(yaml.safe_load((scratch / "request.yaml").read_text()), "request.yaml",
                                 catalog=load_catalog(scratch / "catalog"))
    with open_store(f"sqlite:///{scratch / 'lifecycle.db'}") as st:
        st.submit(doc, "canary-tester")
    found: list[str] = []
    exits = []
    for args in _commands(scratch):
        res = CliRunner().invoke(cli, args, catch_exceptions=True)
        seen = res.stdout + res.stderr
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            seen += "".join(traceback.format_exception(res.exception))
        for k in _leaks(seen):
            found.append(f"{' '.join(args)} -> {k}")
        exits.append((args[:2], res.exit_code))
    for path in sorted(scratch.rglob("*")):
        if path.is_file() and path.suffix != ".yaml":
            for k in _leaks(path.read_bytes().decode("utf-8", "replace")):
                found.append(f"file {path.relative_to(scratch)} -> {k}")
    assert not found, "\n".join(found)
    # the failure paths really ran: the store was used, and commands failed with their documented codes
    rows = sqlite3.connect(scratch / "lifecycle.db").execute("SELECT document FROM requests").fetchall()
    assert len(rows) == 1 and "http://svc:***@127.0.0.1:1/x?token=***" in rows[0][0]
    audit = sqlite3.connect(scratch / "lifecycle.db").execute("SELECT after_json FROM audit").fetchall()
    assert audit and all("Canary" not in a[0] for a in audit)
    codes = {code for _, code in exits}
    assert {2, 4} <= codes, exits


def test_prometheus_userinfo_is_sent_as_basic_auth_and_never_shown():
    import base64

    from yunshang.promread import PrometheusClient

    c = PrometheusClient("http://ops:p%40ss%3Aw0rd@127.0.0.1:9090/")
    assert c.base_url == "http://127.0.0.1:9090" and c.shown == "http://ops:***@127.0.0.1:9090"
    assert c._headers == {"Authorization": "Basic " + base64.b64encode(b"ops:p@ss:w0rd").decode()}
    assert PrometheusClient("http://127.0.0.1:9090")._headers == {}
