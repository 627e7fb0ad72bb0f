"""`yunshang stack` through click's CliRunner: render, graph (labelled as mocks), engine verbs without pulumi."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_render_writes_inputs_only(tmp_path):
    r = run("stack", "render", "tourism", "--catalog", SAMPLE, "--date", "2026-12-01", "--dir", str(tmp_path))
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in tmp_path.glob("Pulumi.*.yaml"))
    assert files == ["Pulumi.tourism.unicom.yaml"]
    cfg = yaml.safe_load((tmp_path / files[0]).read_text())["config"]
    assert set(cfg) == {"yunshang:catalog", "yunshang:department", "yunshang:operator", "yunshang:date"}
    assert cfg["yunshang:operator"] == "unicom" and cfg["yunshang:date"] == "2026-12-01"
    assert (tmp_path / cfg["yunshang:catalog"] / "providers.yaml").exists()


def test_render_bad_department_writes_nothing(tmp_path):
    r = CliRunner().invoke(cli, ["stack", "render", "nope", "--catalog", SAMPLE, "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "unknown department 'nope'" in r.output
    assert list(tmp_path.iterdir()) == []


def test_render_operator_without_contract(tmp_path):
    r = CliRunner().invoke(cli, ["stack", "render", "tourism", "--operator", "govcloud", "--catalog", SAMPLE,
                                 "--date", "2026-12-01", "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "holds no contract with operator govcloud" in r.output
    assert list(tmp_path.iterdir()) == []


def test_graph_json_is_labelled_and_bound_to_operator():
    r = run("stack", "graph", "tourism", "--catalog", SAMPLE, "--date", "2026-12-01", "--output", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert "not a preview against state" in doc["note"]
    (st,) = doc["stacks"]
    assert st["stack"] == "tourism.unicom"
    types = {x["type"] for x in st["resources"]}
    assert "openstack:compute/instance:Instance" in types and "yunshang:tenant:DepartmentTenant" in types
    assert {x["operator"] for x in st["resources"] if x["type"].startswith("openstack:")} == {"unicom"}
    assert all("password" not in x["inputs"] for x in st["resources"])


def test_graph_table_says_mocks():
    r = run("stack", "graph", "tourism", "--catalog", SAMPLE, "--date", "2026-12-01")
    assert r.exit_code == 0 and r.output.startswith("NOTE: declared by the program under Pulumi mocks")


@pytest.mark.parametrize("verb", ["preview", "up", "destroy"])
def test_engine_verbs_without_pulumi_fail_at_once(verb, tmp_path):
    r = CliRunner().invoke(cli, ["stack", verb, "tourism", "--catalog", SAMPLE],
                           env={"PATH": str(tmp_path), "YUNSHANG_PULUMI_DIR": str(tmp_path)})
    assert r.exit_code == 6
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the Pulumi engine is not installed" in lines[0] and "install" in lines[0]
