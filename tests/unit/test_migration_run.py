"""The orchestrator over a scripted step runner (the real one, Ansible, runs in tests/migration):
resume without redoing, failures isolated per host, precheck stops the wave, rollback resets."""
from __future__ import annotations

import datetime as dt

import pytest

from yunshang.errors import MigrationFailed, NotFound
from yunshang.migration.plan import build_plan
from yunshang.migration.run import Orchestrator, StepOutcome
from yunshang.migration.state import STEPS, StateStore
from yunshang.migration.survey import survey_from_dicts
from yunshang.migration.waves import WaveOptions


def make_plan():
    hosts = [{"hostname": n, "address": "10.0.0.1", "os": "x", "vcpu": 1, "ram_gb": 1, "disk_gb": 1,
              "business_system": "b", "department": "health", "operator": "telecom", "depends_on": deps}
             for n, deps in [("a", []), ("b", []), ("c", ["a"]), ("d", ["b"])]]
    return build_plan(survey_from_dicts(hosts), WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))


class Script:
    """run_step double: records calls; fails (host, step) pairs given; can 'crash' at a call."""

    def __init__(self, fail=(), crash_at=None, leave_running=()):
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.fail = set(fail)
        self.crash_at = crash_at
        self.leave_running = set(leave_running)

    def __call__(self, step, hosts, wave, reporter):
        self.calls.append((step, hosts))
        for h in hosts:
            if (h, step) in self.leave_running:
                continue
            if (h, step) in self.fail:
                reporter.failed(h, f"{step} broke on {h}")
            else:
                reporter.done(h)
        if self.crash_at == (step, len(self.calls)):
            raise KeyboardInterrupt("killed")
        return StepOutcome("successful", 0)


def test_full_run_two_waves(tmp_path):
    plan = make_plan()
    script = Script()
    reports = Orchestrator(plan, StateStore(str(tmp_path)), script).run()
    assert [sorted(r.migrated) for r in reports] == [["a", "b"], ["c", "d"]]
    assert [c[0] for c in script.calls] == list(STEPS) * 2
    assert script.calls[0] == ("discover", ("a", "b")) and script.calls[len(STEPS)] == ("discover", ("c", "d"))


def test_killed_mid_step_resumes_without_redoing(tmp_path):
    plan = make_plan()
    store = StateStore(str(tmp_path))
    # 'a' finished sync, 'b' was still syncing when the process died
    with pytest.raises(KeyboardInterrupt):
        Orchestrator(plan, store, Script(leave_running={("b", "sync")}, crash_at=("sync", 3))).run()
    st = store.load()
    assert st.host("a").step("sync").status == "done" and st.host("b").step("sync").status == "running"
    again = Script()
    Orchestrator(plan, store, again).run()
    assert again.calls[0] == ("sync", ("b",))                   # only b redoes sync
    assert ("discover", ("a", "b")) not in again.calls
    assert store.load().host("a").step("sync").attempts == 1 and store.load().host("b").step("sync").attempts == 2


def test_failure_isolated_and_dependents_held(tmp_path):
    plan = make_plan()
    reports = Orchestrator(plan, StateStore(str(tmp_path)), Script(fail={("a", "discover")})).run()
    assert reports[0].failed == {"a": "discover: discover broke on a"} and reports[0].migrated == ["b"]
    assert reports[1].migrated == ["d"] and reports[1].held == {"c": "waits for a (failed)"}


def test_precheck_failure_stops_before_sync(tmp_path):
    plan = make_plan()
    script = Script(fail={("b", "precheck")})
    with pytest.raises(MigrationFailed, match="precheck failed, nothing was copied") as ei:
        Orchestrator(plan, StateStore(str(tmp_path)), script).run()
    assert "b: precheck broke on b" in str(ei.value)
    assert [c[0] for c in script.calls] == ["discover", "precheck"]


def test_host_not_reported_counts_as_failed(tmp_path):
    plan = make_plan()
    store = StateStore(str(tmp_path))
    Orchestrator(plan, store, Script(leave_running={("a", "convert")})).run([1])
    assert store.load().host("a").failure == "convert: did not finish (playbook successful, rc 0)"


def test_rollback_resets_and_unknown_inputs(tmp_path):
    plan = make_plan()
    store = StateStore(str(tmp_path))
    orch = Orchestrator(plan, store, Script())
    orch.run([1])
    orch.rollback(["a"], lambda hs: (StepOutcome("successful", 0), set(hs), {}))
    assert store.load().host("a").status == "rolled-back"
    with pytest.raises(MigrationFailed, match="rollback did not finish for b .*b: cloud down"):
        orch.rollback(["a", "b"], lambda hs: (StepOutcome("failed", 2), {"a"}, {"b": "cloud down"}))
    assert store.load().host("b").status == "migrated" and store.load().host("a").status == "rolled-back"
    with pytest.raises(NotFound):
        orch.rollback(["zz"], lambda hs: (StepOutcome("successful", 0), set(hs), {}))
    with pytest.raises(NotFound):
        orch.run([3])


def test_state_of_another_plan_refused(tmp_path):
    store = StateStore(str(tmp_path))
    Orchestrator(make_plan(), store, Script()).run([1])
    other = build_plan(survey_from_dicts([{"hostname": "z", "address": "10.0.0.1", "os": "x", "vcpu": 1, "ram_gb": 1,
                                          "disk_gb": 1, "business_system": "b", "department": "health",
                                          "operator": "telecom"}]), WaveOptions(), dt.datetime(2026, 11, 23))
    with pytest.raises(MigrationFailed, match="belongs to plan"):
        Orchestrator(other, store, Script())
