"""Per-host per-step state: transitions, what runs next, atomic persistence."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from yunshang.errors import MigrationFailed
from yunshang.migration.plan import build_plan
from yunshang.migration.state import (STEPS, StateStore, finish_step, new_state, reset_host, retry_failed, runnable,
                                      start_step)
from yunshang.migration.survey import survey_from_dicts
from yunshang.migration.waves import WaveOptions

T = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture()
def plan():
    hosts = [{"hostname": n, "address": "10.0.0.1", "os": "x", "vcpu": 1, "ram_gb": 1, "disk_gb": 1,
              "business_system": "b", "department": "health", "operator": "telecom", "depends_on": deps}
             for n, deps in [("db", []), ("web", []), ("app", ["db"])]]
    return build_plan(survey_from_dicts(hosts), WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))


def run_steps(state, host, steps, ok=True):
    for s in steps:
        state = finish_step(start_step(state, host, s, T), host, s, ok, "" if ok else "boom", T)
    return state


def test_new_state_all_pending(plan):
    st = new_state(plan)
    assert st.plan_id == plan.plan_id
    assert {h: hs.status for h, hs in st.hosts.items()} == {"db": "pending", "web": "pending", "app": "pending"}
    assert st.host("app").wave == 2 and st.host("db").next_step == "discover"


@pytest.mark.parametrize("done,failed,status,next_step", [
    ([], None, "pending", "discover"),
    (["discover"], None, "in-progress", "precheck"),
    (list(STEPS[:3]), "convert", "failed", "convert"),
    (list(STEPS), None, "migrated", None),
])
def test_host_status(plan, done, failed, status, next_step):
    st = run_steps(new_state(plan), "db", done)
    if failed:
        st = run_steps(st, "db", [failed], ok=False)
    hs = st.host("db")
    assert (hs.status, hs.next_step) == (status, next_step)
    if failed:
        assert hs.failure == "convert: boom"


def test_runnable_respects_steps_failures_and_dependencies(plan):
    st = new_state(plan)
    assert runnable(st, plan, 1, "discover") == (("db", "web"), ())
    st = run_steps(st, "db", ["discover"])
    assert runnable(st, plan, 1, "discover") == (("web",), ())
    assert runnable(st, plan, 1, "precheck") == (("db",), ())
    st = run_steps(st, "web", ["discover"], ok=False)
    assert runnable(st, plan, 1, "discover") == ((), ())          # failed hosts are not retried by themselves
    assert runnable(st, plan, 2, "discover") == ((), (("app", "waits for db (in-progress)"),))
    st = run_steps(st, "db", STEPS[1:])
    assert runnable(st, plan, 2, "discover") == (("app",), ())
    st = retry_failed(st, ["web"])
    assert runnable(st, plan, 1, "discover") == (("web",), ())
    assert st.host("web").step("discover").attempts == 1


def test_interrupted_step_reruns_done_steps_stay(plan):
    st = run_steps(new_state(plan), "db", ["discover", "precheck"])
    st = start_step(st, "db", "sync", T)                            # killed here
    st = retry_failed(st, ["db"])
    assert st.host("db").step("sync").status == "pending" and st.host("db").step("precheck").status == "done"
    assert st.host("db").next_step == "sync"


def test_reset_after_rollback(plan):
    st = reset_host(run_steps(new_state(plan), "db", STEPS), "db", T)
    hs = st.host("db")
    assert hs.status == "rolled-back" and hs.rolled_back_at.startswith("2026-11-26T01:00")
    assert all(hs.step(s).attempts == 1 for s in STEPS)


def test_store_round_trip_atomic_and_locked(plan, tmp_path):
    store = StateStore(str(tmp_path / "run"))
    with pytest.raises(MigrationFailed, match="run `yunshang migrate run PLAN` first"):
        store.load()
    st = run_steps(new_state(plan), "web", ["discover"])
    store.save(st)
    assert store.load() == st
    assert [f for f in os.listdir(store.directory) if f.startswith(".tmp-")] == []
    assert json.loads(open(store.path).read())["hosts"]["web"]["steps"]["discover"]["status"] == "done"
    store.lock()
    other = StateStore(store.directory)
    with pytest.raises(MigrationFailed, match="another migration run"):
        other.lock()
    store.unlock()
    other.lock()
    other.unlock()
    open(store.path, "w").write("{not json")
    with pytest.raises(MigrationFailed, match="unreadable"):
        store.load()
