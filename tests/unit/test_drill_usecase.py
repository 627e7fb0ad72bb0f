"""The takeover drill and the store-backed takeover plan are use cases (yunshang.usecases.drill): the
person is checked before anything is read, stopped or written. The identities here are built by hand
(the unit tier has no Keystone); tests/api/test_cli_people.py runs the same refusals through the CLI
with real Keystone people."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from yunshang.authz import Identity, NotAuthenticated, NotPermitted
from yunshang.catalog import load_catalog
from yunshang.store import open_store
from yunshang.usecases import Deps
from yunshang.usecases import drill as ud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "examples", "prefecture")
NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.timezone.utc)


def person(name, *roles, department=""):
    return Identity(f"id-{name}", name, frozenset(roles), department)


@pytest.fixture()
def deps(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'l.db'}") as store:
        yield Deps(store, load_catalog(SAMPLE), str(tmp_path / "clouds.yaml"))


@pytest.mark.parametrize("who", [person("center-reviewer", "reviewer"), person("center-auditor", "auditor"),
                                 person("health-it", "requester", department="health"),
                                 person("health-head", "department-head", department="health"), None])
def test_only_an_engineer_runs_the_drill_and_nothing_happens_otherwise(deps, tmp_path, who):
    evidence = tmp_path / "drill.json"
    devdir = tmp_path / "no-devcloud"          # would be read right after the check: it must not be
    with pytest.raises(NotAuthenticated if who is None else NotPermitted) as exc:
        ud.drill(deps, who, "telecom", "unicom", devcloud_dir=str(devdir), evidence_path=str(evidence))
    assert exc.value.exit_code == 2
    assert not evidence.exists() and not devdir.exists()
    assert deps.store.audit_log() == []


def test_an_engineer_passes_the_check_and_meets_the_devcloud(deps, tmp_path):
    """Past the check the use case does its work: here the empty devcloud directory is what refuses."""
    from yunshang.errors import YunshangError

    with pytest.raises(YunshangError) as exc:
        ud.drill(deps, person("center-engineer", "engineer"), "telecom", "unicom",
                 devcloud_dir=str(tmp_path / "none"), evidence_path=str(tmp_path / "e.json"))
    assert not isinstance(exc.value, (NotPermitted, NotAuthenticated))


def test_the_store_backed_plan_is_for_center_roles_the_catalog_plan_for_anyone(deps):
    for who in (person("health-head", "department-head", department="health"), None):
        with pytest.raises(NotAuthenticated if who is None else NotPermitted):
            ud.plan(deps, who, "telecom", NOW, (), force=True)
    got = ud.plan(deps, person("center-auditor", "auditor"), "telecom", NOW, (), force=True)
    assert got.moves and got.operator == "telecom"
    catalog_only = ud.plan(Deps(None, deps.catalog), None, "telecom", NOW, (), force=True)
    assert [m.department for m in catalog_only.moves] == [m.department for m in got.moves]
