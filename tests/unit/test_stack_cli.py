"""`yunshang stack` through click's CliRunner: render, graph (labelled as mocks), engine verbs without pulumi."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from plan_fixtures import record_plan_into  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")


@pytest.fixture(autouse=True)
def recorded_plan(tmp_path, monkeypatch):
    """A store of this test's own with the sample's plan for 2026-12-01 recorded (the stack commands read it)."""
    return record_plan_into(tmp_path, monkeypatch, SAMPLE, departments=["tourism"])


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_render_writes_inputs_only(tmp_path, recorded_plan):
    out = tmp_path / "out"
    r = run("stack", "render", "tourism", "--catalog", SAMPLE, "--date", "2026-12-01", "--dir", str(out))
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in out.glob("Pulumi.*.yaml"))
    assert files == ["Pulumi.tourism.unicom.yaml"]
    cfg = yaml.safe_load((out / files[0]).read_text())["config"]
    assert set(cfg) == {"yunshang:catalog", "yunshang:department", "yunshang:operator", "yunshang:plan",
                        "yunshang:planHash"}
    assert cfg["yunshang:operator"] == "unicom" and cfg["yunshang:plan"] == recorded_plan.id
    assert cfg["yunshang:planHash"] == recorded_plan.content_hash
    assert (out / cfg["yunshang:catalog"] / "providers.yaml").exists()


def test_render_bad_department_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["stack", "render", "nope", "--catalog", SAMPLE, "--dir", str(out)])
    assert r.exit_code == 2 and "unknown department 'nope'" in r.output
    assert not out.exists()


def test_render_operator_without_contract(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["stack", "render", "tourism", "--operator", "govcloud", "--catalog", SAMPLE,
                                 "--date", "2026-12-01", "--dir", str(out)])
    assert r.exit_code == 2 and "holds no contract with operator govcloud" in r.output
    assert not out.exists()


def test_render_without_a_recorded_plan_says_how_to_make_one(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["stack", "render", "health", "--catalog", SAMPLE, "--dir", str(out)])
    assert r.exit_code == 2 and "no recorded plan covers department health" in r.output \
        and "yunshang plan --save" in r.output
    assert not out.exists()


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
    r = CliRunner().invoke(cli, ["stack", verb, "tourism", "--catalog", SAMPLE, *(["--yes"] if verb == "destroy" else [])],
                           env={"PATH": str(tmp_path), "YUNSHANG_PULUMI_DIR": str(tmp_path)})
    assert r.exit_code == 6
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the Pulumi engine is not installed" in lines[0] and "install" in lines[0]


def test_engine_build_without_go_or_pulumi_is_one_line_exit_6(tmp_path):
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(["bash", str(root / "tools" / "pulumi" / "build.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GO": str(tmp_path / "no-go"),
                            "VENV": str(tmp_path / "venv"), "YUNSHANG_PULUMI_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 6, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "install Go >= 1.25" in lines[0] and "pulumi >=" in lines[0], r.stderr
    assert not (tmp_path / "cache").exists()


def test_destroy_without_yes_and_without_a_terminal_is_refused_before_anything(tmp_path):
    # no engine either: the refusal comes first, and nothing is read (not even the catalog)
    r = CliRunner().invoke(cli, ["stack", "destroy", "tourism", "--catalog", str(tmp_path / "nowhere")],
                           env={"PATH": str(tmp_path), "YUNSHANG_PULUMI_DIR": str(tmp_path)})
    assert r.exit_code == 2
    assert "confirm with --yes" in r.output and "Traceback" not in r.output

