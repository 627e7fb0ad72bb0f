"""`yunshang migrate survey|plan|status` through click's CliRunner (no services needed)."""
from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from cli.main import cli

CSV = """hostname,address,ssh_port,os,vcpu,ram_gb,disk_gb,data_paths,services,business_system,depends_on,\
maintenance_window,department,operator
db-01,10.1.0.1,22,debian12,2,4,40,/srv/pg,pg:5432:tcp,his,,daily 01:00-05:00,health,telecom
app-01,10.1.0.2,22,debian12,2,4,40,/srv/app,web:80:http /health,his,db-01,daily 01:00-05:00,health,telecom
gw-01,10.1.0.3,22,debian12,1,2,20,,ssh:22:tcp,gateway,,any,public-security,unicom
"""


def test_survey_writes_inventory(tmp_path):
    (tmp_path / "s.csv").write_text(CSV)
    r = CliRunner().invoke(cli, ["migrate", "survey", str(tmp_path / "s.csv"), "--inventory-out", str(tmp_path / "inv.yml"),
                                 "--ssh-key", "/k/id"])
    assert r.exit_code == 0, r.output
    assert "3 hosts valid" in r.output
    inv = yaml.safe_load((tmp_path / "inv.yml").read_text())
    hosts = inv["all"]["children"]["department_health"]["children"]["system_health__his"]["hosts"]
    assert hosts["db-01"]["ansible_host"] == "10.1.0.1" and hosts["db-01"]["ansible_ssh_private_key_file"] == "/k/id"


def test_bad_survey_exit_2_nothing_written(tmp_path):
    (tmp_path / "s.csv").write_text(CSV.replace("db-01,10.1.0.1,22", "db-01,10.1.0.1,99999"))
    r = CliRunner().invoke(cli, ["migrate", "survey", str(tmp_path / "s.csv"), "--inventory-out", str(tmp_path / "inv.yml")])
    assert r.exit_code == 2
    assert f"{tmp_path / 's.csv'}:2: ssh_port: 99999: expected 1..65535" in r.output
    assert not (tmp_path / "inv.yml").exists()


def test_plan_table_and_json(tmp_path):
    (tmp_path / "s.csv").write_text(CSV)
    r = CliRunner().invoke(cli, ["migrate", "plan", str(tmp_path / "s.csv"), "--not-before", "2026-11-23 09:00"])
    assert r.exit_code == 0, r.output
    lines = [ln.split() for ln in r.output.splitlines()[2:5]]
    assert [(ln[0], ln[4]) for ln in lines] == [("1", "db-01"), ("1", "gw-01"), ("2", "app-01")]
    assert "2 waves, 3 hosts" in r.output
    r = CliRunner().invoke(cli, ["migrate", "plan", str(tmp_path / "s.csv"), "--not-before", "2026-11-23 09:00",
                                 "-o", "json", "--plan-out", str(tmp_path / "plan.json")])
    data = json.loads(r.output)
    assert data == json.loads((tmp_path / "plan.json").read_text())
    assert data["waves"][0]["starts_at"] == "2026-11-24T01:00:00" and data["destinations"]["gw-01"]["operator"] == "unicom"


def test_plan_cycle_reported(tmp_path):
    (tmp_path / "s.csv").write_text(CSV.replace("his,,daily", "his,app-01,daily"))
    r = CliRunner().invoke(cli, ["migrate", "plan", str(tmp_path / "s.csv")])
    assert r.exit_code == 2 and "dependency cycle: app-01 -> db-01 -> app-01" in r.output


def test_status_without_run(tmp_path):
    r = CliRunner().invoke(cli, ["migrate", "status", "--state-dir", str(tmp_path)])
    assert r.exit_code == 2 and "no migration in" in r.output
