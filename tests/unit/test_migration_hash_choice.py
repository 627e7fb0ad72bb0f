"""Integrity digest of a migration: per catalog (migration.yaml `hash_algorithm`), per run
(`migrate run --hash-algorithm` wins), default SHA-256; anything else refused with file:line."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.migrate import AnsibleStepRunner
from yunshang.catalog import load_catalog
from yunshang.errors import CatalogInvalid, SurveyInvalid
from yunshang.migration.plan import build_plan, plan_from_dict
from yunshang.migration.survey import survey_from_dicts
from yunshang.migration.waves import WaveOptions

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefecture"
CSV = """hostname,address,ssh_port,os,vcpu,ram_gb,disk_gb,data_paths,services,business_system,depends_on,\
maintenance_window,department,operator
db-01,10.1.0.1,22,debian12,2,4,40,/srv/pg,pg:5432:tcp,his,,daily 01:00-05:00,health,
"""
ROW = {"hostname": "db-01", "address": "10.1.0.1", "os": "debian12", "vcpu": 2, "ram_gb": 4, "disk_gb": 40,
       "data_paths": ["/srv/pg"], "business_system": "his", "department": "health", "maintenance_window": "any"}


def catalog_dir(tmp_path: Path, migration_yaml: str | None) -> Path:
    root = tmp_path / "cat"
    shutil.copytree(SAMPLE, root)
    if migration_yaml is not None:
        (root / "migration.yaml").write_text(migration_yaml)
    return root


@pytest.mark.parametrize("text, want", [(None, "sha256"), ("hash_algorithm: sm3\n", "sm3"),
                                        ("# the audit asks for SM3\nhash_algorithm: sha256\n", "sha256"), ("{}\n", "sha256")])
def test_catalog_chooses_the_algorithm(tmp_path, text, want):
    assert load_catalog(catalog_dir(tmp_path, text)).migration_hash_algorithm == want


@pytest.mark.parametrize("text, line, msg", [
    ("# center-wide\nhash_algorithm: md5\n", 2, "hash_algorithm: expected one of sha256 | sm3, got 'md5'"),
    ("hash_algoritm: sm3\n", 1, "hash_algoritm: unknown field 'hash_algoritm' (did you mean 'hash_algorithm'?)"),
    ("hash_algorithm: [sm3]\n", 1, "hash_algorithm: expected one of sha256 | sm3"),
    ("", None, "file is empty"),
])
def test_catalog_refuses_anything_else_with_file_and_line(tmp_path, text, line, msg):
    root = catalog_dir(tmp_path, text)
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(root)
    [p] = exc.value.problems
    assert p.file == str(root / "migration.yaml") and p.line == line and msg in str(p), str(p)


def test_plan_carries_the_catalogs_algorithm_and_round_trips(tmp_path):
    survey = survey_from_dicts([ROW])
    cat = load_catalog(catalog_dir(tmp_path, "hash_algorithm: sm3\n"))
    plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0), cat)
    assert plan.hash_algorithm == "sm3" and plan.to_dict()["hash_algorithm"] == "sm3"
    again = plan_from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.hash_algorithm == "sm3" and again.plan_id == plan.plan_id
    plain = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0),
                       load_catalog(catalog_dir(tmp_path / "b", None)))
    assert plain.hash_algorithm == "sha256" and "hash_algorithm" not in plain.to_dict()   # older plans keep their id
    assert plain.plan_id != plan.plan_id
    bad = {**plan.to_dict(), "hash_algorithm": "md5"}
    with pytest.raises(SurveyInvalid) as exc:
        plan_from_dict(bad, "plan.json")
    assert "hash_algorithm 'md5', expected one of sha256 | sm3" in str(exc.value)


@pytest.mark.parametrize("run_flag, want", [("", "sm3"), ("sha256", "sha256"), ("sm3", "sm3")])
def test_the_run_flag_overrides_the_catalog(tmp_path, run_flag, want):
    cat = load_catalog(catalog_dir(tmp_path, "hash_algorithm: sm3\n"))
    plan = build_plan(survey_from_dicts([ROW]), WaveOptions(), dt.datetime(2026, 11, 23, 9, 0), cat)
    r = AnsibleStepRunner(str(tmp_path / "state"), plan, "/dev/null", "/k/id", hash_algorithm=run_flag)
    assert r.extravars()["migrate_hash_algorithm"] == want


def test_default_is_sha256(tmp_path):
    plan = build_plan(survey_from_dicts([{**ROW, "operator": "telecom"}]), WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
    assert AnsibleStepRunner(str(tmp_path / "s"), plan, "/dev/null", "/k/id").extravars()["migrate_hash_algorithm"] == "sha256"


def test_cli_plan_names_the_algorithm_and_refuses_a_bad_catalog(tmp_path):
    (tmp_path / "s.csv").write_text(CSV)
    root = catalog_dir(tmp_path, "hash_algorithm: sm3\n")
    r = CliRunner().invoke(cli, ["migrate", "plan", str(tmp_path / "s.csv"), "--catalog", str(root),
                                 "--not-before", "2026-11-23 09:00", "--plan-out", str(tmp_path / "plan.json")])
    assert r.exit_code == 0, r.output
    assert "integrity evidence sm3" in r.output
    assert json.loads((tmp_path / "plan.json").read_text())["hash_algorithm"] == "sm3"
    (root / "migration.yaml").write_text("hash_algorithm: sha1\n")
    r = CliRunner().invoke(cli, ["migrate", "plan", str(tmp_path / "s.csv"), "--catalog", str(root),
                                 "--plan-out", str(tmp_path / "plan2.json")])
    assert r.exit_code == 2, r.output
    assert f"{root / 'migration.yaml'}:1: hash_algorithm: expected one of sha256 | sm3, got 'sha1'" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "plan2.json").exists()
