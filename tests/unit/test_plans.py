"""The recorded plan (yunshang.plans): canonical document and hash, catalog digest, the validity
check that refuses a plan whose contracts or catalog changed under it (naming what changed),
and the CLI that records (`plan --save`) and consumes (`--plan ID`) it. SQLite store here; both
backends in tests/lifecycle/test_plans_store.py."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from yunshang import plans as pl
from yunshang.catalog import load_catalog
from yunshang.placement import place
from yunshang.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CAT = Path(__file__).resolve().parents[1] / "tenant" / "catalog"
DAY = dt.date(2026, 12, 1)


@pytest.fixture()
def catalog():
    return load_catalog(CAT)


@pytest.fixture()
def doc(catalog):
    return pl.plan_document(catalog, place(catalog, DAY))


def test_document_round_trip_and_stable_hash(catalog, doc):
    plan = place(catalog, DAY)
    back = pl.plan_from_document(json.loads(json.dumps(doc)))
    assert back.placements == plan.placements and back.date == plan.date
    assert pl.content_hash(doc) == pl.content_hash(pl.plan_document(catalog, place(catalog, DAY)))
    assert pl.plan_departments(doc) == ("ytest", "zbackup")
    assert {r["name"] for r in doc["requests"]["ytest"]} == {"portal", "db"}
    other = dict(doc, date="2026-12-02")
    assert pl.content_hash(other) != pl.content_hash(doc)


def test_catalog_digest_follows_content_not_location(catalog, tmp_path):
    shutil.copytree(CAT, tmp_path / "c")
    moved = load_catalog(tmp_path / "c")
    assert pl.catalog_digest(moved) == pl.catalog_digest(catalog)
    f = tmp_path / "c" / "departments" / "ytest.yaml"
    f.write_text(f.read_text().replace("count: 2", "count: 3"))
    assert pl.catalog_digest(load_catalog(tmp_path / "c")) != pl.catalog_digest(catalog)


def test_valid_plan_has_no_problems(catalog, doc):
    assert pl.check_plan(catalog, doc, DAY) == []


def _edit(catalog, dept, **changes):
    d = catalog.department(dept)
    d = dataclasses.replace(d, **{k: v(d) for k, v in changes.items()})
    return dataclasses.replace(catalog, departments=tuple(d if x.name == dept else x for x in catalog.departments))


def test_expired_contract_is_named(catalog, doc):
    problems = pl.check_plan(catalog, doc, dt.date(2029, 1, 1))
    assert any("contract YT-2026-01 of ytest with telecom is not valid on 2029-01-01" in p for p in problems)


def test_changed_request_is_named(catalog, doc):
    cat = _edit(catalog, "ytest", requests=lambda d: tuple(dataclasses.replace(r, count=3) if r.name == "portal"
                                                           else r for r in d.requests))
    assert pl.check_plan(cat, doc, DAY) == ["request ytest/portal changed since the plan: count 2 -> 3"]


def test_removed_request_and_contract_are_named(catalog, doc):
    cat = _edit(catalog, "ytest", requests=lambda d: tuple(r for r in d.requests if r.name != "db"),
                contracts=lambda d: tuple(c for c in d.contracts if c.id != "YT-2026-01"))
    problems = pl.check_plan(cat, doc, DAY, ["ytest"])
    assert "request ytest/db was removed from the catalog since the plan" in problems
    assert "contract YT-2026-01 of ytest is no longer in the catalog" in problems


def test_changed_size_is_named(catalog, doc):
    tpl = catalog.templates["tiny-web"]
    size = dataclasses.replace(tpl.sizes["tiny"], vcpu=tpl.sizes["tiny"].vcpu + 1)
    templates = dict(catalog.templates, **{"tiny-web": dataclasses.replace(tpl, sizes={**tpl.sizes, "tiny": size})})
    cat = dataclasses.replace(catalog, templates=templates)
    (p,) = pl.check_plan(cat, doc, DAY)
    assert p.startswith("size tiny of template tiny-web changed since the plan: vcpu ")


def test_unrelated_change_is_a_note_not_a_refusal(catalog, doc):
    rec = pl.PlanRecord(1, pl.content_hash(doc), dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), "li",
                        "plan --save", DAY, pl.catalog_digest(catalog), pl.plan_departments(doc), doc)
    cat = _edit(catalog, "zbackup", display_name=lambda d: "renamed")
    _, plan, notes = pl.applicable_plan(cat, rec, DAY, ["ytest"])
    assert plan.placements and len(notes) == 1 and "the catalog changed since plan 1" in notes[0]
    with pytest.raises(pl.PlanInvalid) as e:
        pl.applicable_plan(cat, dataclasses.replace(rec, content_hash="0" * 64), DAY, ["ytest"])
    assert "no longer matches its content hash" in str(e.value)


def test_store_save_latest_and_audit(tmp_path, catalog):
    with open_store("sqlite:///" + str(tmp_path / "l.db")) as st:
        assert st.latest_plan("ytest") is None
        a = pl.record_plan(st, catalog, place(catalog, DAY), by="li", source="plan --save")
        b = pl.record_plan(st, catalog, place(catalog, DAY), by="li", source="plan --save", departments=["zbackup"])
        assert st.latest_plan("ytest").id == a.id and st.latest_plan("zbackup").id == b.id
        assert st.get_plan(a.id) == a and a.departments == ("ytest", "zbackup") and b.departments == ("zbackup",)
        assert [p.id for p in st.list_plans("ytest")] == [a.id]
        assert [e.action for e in st.audit_log()] == ["save-plan", "save-plan"] and st.verify_audit()[0]
        with pytest.raises(pl.NoPlan):
            pl.resolve_plan(st, catalog, "nobody", None, DAY)


# --------------------------------------------------------------------------- CLI
def run(*args, db, ok=True):
    r = CliRunner().invoke(cli, list(args), env={"YUNSHANG_DB": db, "YUNSHANG_ACTOR": ""})
    if ok:
        assert r.exit_code == 0, r.output
    return r


def one_line(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


def _record(db: str, catalog_dir=CAT):
    """What `plan --save` records for the catalog at 2026-12-01 (the CLI's identity check aside)."""
    cat = load_catalog(catalog_dir)
    with open_store(db) as st:
        return pl.record_plan(st, cat, place(cat, DAY), by="test (keystone:none)", source="plan --save")


def test_cli_save_then_apply_verify_refuse_cleanly(tmp_path):
    db = "sqlite:///" + str(tmp_path / "l.db")
    base = ("--catalog", str(CAT), "--date", "2026-12-01")
    r = run("tenant", "verify", "ytest", "--operator", "telecom", *base, db=db, ok=False)
    assert r.exit_code == 2 and "no recorded plan covers department ytest" in one_line(r) \
        and "yunshang plan --save" in one_line(r)
    r = run("plan", *base, "--save", db=db, ok=False)
    assert r.exit_code == 2 and "--save needs --os-cloud NAME" in r.output   # who records it: Keystone, not typed
    out = _record(db)               # the engineer's `plan --save` runs against Keystone: tests/lifecycle/test_plans_store.py
    assert out.id == 1 and list(out.departments) == ["ytest", "zbackup"]
    r = run("tenant", "apply", "ytest", "--operator", "telecom", "--plan", "7", *base, "--dry-run", db=db, ok=False)
    assert r.exit_code == 2 and "no recorded plan with id 7" in one_line(r)
    r = run("tenant", "apply", "ytest", "--operator", "telecom", "--catalog", str(CAT), "--date", "2029-06-01",
            "--dry-run", "--clouds", str(tmp_path / "none.yaml"), db=db, ok=False)
    assert r.exit_code == 2
    line = one_line(r)
    assert "plan 1 cannot be applied" in line and "YT-2026-01" in line and "not valid on 2029-06-01" in line


def test_cli_changed_catalog_refused_naming_the_change(tmp_path):
    db = "sqlite:///" + str(tmp_path / "l.db")
    cat = tmp_path / "cat"
    shutil.copytree(CAT, cat)
    _record(db, cat)
    f = cat / "departments" / "ytest.yaml"
    f.write_text(f.read_text().replace("count: 2", "count: 3"))
    r = run("stack", "graph", "ytest", "--catalog", str(cat), "--date", "2026-12-01", db=db, ok=False)
    assert r.exit_code == 2 and "request ytest/portal changed since the plan: count 2 -> 3" in one_line(r)


def test_render_names_plan_id_and_hash(tmp_path):
    db = "sqlite:///" + str(tmp_path / "l.db")
    out = _record(db).summary()
    run("stack", "render", "ytest", "--catalog", str(CAT), "--date", "2026-12-01", "--dir", str(tmp_path), db=db)
    cfg = yaml.safe_load((tmp_path / "Pulumi.ytest.telecom.yaml").read_text())["config"]
    assert cfg["yunshang:plan"] == out["id"] and cfg["yunshang:planHash"] == out["content_hash"]
    assert "yunshang:date" not in cfg


def test_stack_program_refuses_a_plan_whose_hash_is_not_the_configs(tmp_path, catalog, monkeypatch):
    from stacks.program import spec_from_config

    db = "sqlite:///" + str(tmp_path / "l.db")
    with open_store(db) as st:
        rec = pl.record_plan(st, catalog, place(catalog, DAY), by="li", source="plan --save")
    spec = spec_from_config(catalog=str(CAT), department="ytest", operator="telecom", plan=str(rec.id),
                            plan_hash=rec.content_hash, db_url=db)
    assert spec.plan_id == rec.id and spec.plan_hash == rec.content_hash and spec.servers
    with pytest.raises(pl.PlanInvalid) as e:
        spec_from_config(catalog=str(CAT), department="ytest", operator="telecom", plan=str(rec.id),
                         plan_hash="f" * 64, db_url=db)
    assert "the stack config names content hash ffffffffffff" in str(e.value)


def test_specs_name_their_plan_and_the_stack_config_says_so(tmp_path):
    from cli.stack import specs_for
    from stacks.automation import plan_config

    db = "sqlite:///" + str(tmp_path / "l.db")
    cat = load_catalog(CAT)
    with open_store(db) as st:
        rec = pl.record_plan(st, cat, place(cat, DAY), by="li", source="plan --save")
    _, _, specs, record, notes = specs_for(str(CAT), "ytest", (), dt.datetime(2026, 12, 1), None, None, db)
    assert record == rec and not notes and [s.operator for s in specs] == ["telecom"]
    assert all(s.plan_id == rec.id and s.plan_hash == rec.content_hash for s in specs)
    cfg = {k: v.value for k, v in plan_config(specs[0]).items()}
    assert cfg == {"yunshang:department": "ytest", "yunshang:operator": "telecom", "yunshang:plan": str(rec.id),
                   "yunshang:planHash": rec.content_hash}
