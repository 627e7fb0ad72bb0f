"""`yunshang devcloud` commands that need no running services."""
from __future__ import annotations

import json

from click.testing import CliRunner

from cli.devcloud import devcloud


def test_env_without_devcloud_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(devcloud, ["env", "--dir", str(tmp_path)])
    assert r.exit_code != 0
    assert "no devcloud" in str(r.exception) and str(tmp_path) in str(r.exception)


def test_env_prints_only_the_clouds_file(tmp_path):
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    r = CliRunner().invoke(devcloud, ["env", "--dir", str(tmp_path)])
    assert r.exit_code == 0
    assert r.output.strip().splitlines() == [f"export OS_CLIENT_CONFIG_FILE={tmp_path.resolve()}/clouds.yaml"]
    assert "OS_CLOUD" not in r.output


def test_status_json_of_a_stopped_dir(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"operators": [
        {"name": "telecom", "index": 0, "external_network": "public",
         "zones": [{"name": "az1", "vcpu": 8, "ram_gb": 16, "disk_gb": 100}]}]}))
    r = CliRunner().invoke(devcloud, ["status", "--dir", str(tmp_path), "--output", "json"])
    assert r.exit_code == 1
    st = json.loads(r.output)
    assert st["up"] is False
    names = [s["name"] for s in st["operators"][0]["services"]]
    assert names[0] == "keystone" and names[-1] == "nova-compute-az1"
    assert st["operators"][0]["services"][0]["port"] == 17000
    assert all(not s["up"] for s in st["operators"][0]["services"])


def test_up_rejects_too_many_operators(tmp_path):
    r = CliRunner().invoke(devcloud, ["up", "--operators", "4", "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "4" in r.output
