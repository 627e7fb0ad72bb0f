"""Drive a plan wave by wave, step by step, through a playbook runner passed in (no Ansible import here).

The runner is any callable ``run_step(step, hosts, wave, reporter) -> StepOutcome``;
the real one (``cli/migrate.py``) calls ``ansible_runner.run`` and turns the
event stream into ``reporter.done(host)`` / ``reporter.failed(host, reason)``.
Every change of a host's state is saved at once (atomically), so a run killed
at any moment resumes where it was: ``done`` steps are never redone, the step
that was running is run again (all steps are idempotent).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Protocol

from yunshang.errors import MigrationFailed, NotFound
from yunshang.migration.plan import MigrationPlan
from yunshang.migration.state import (STEPS, MigrationState, StateStore, finish_step, new_state, reset_host,
                                      retry_failed, runnable, start_step)


@dataclass(frozen=True)
class StepOutcome:
    status: str                  # the runner's status: successful | failed | canceled | timeout
    rc: int


class Reporter(Protocol):
    def done(self, host: str) -> None: ...
    def failed(self, host: str, reason: str) -> None: ...


RunStep = Callable[[str, tuple[str, ...], int, Reporter], StepOutcome]


@dataclass
class WaveReport:
    wave: int
    migrated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)


class Orchestrator:
    """Runs waves of ``plan`` with ``run_step``, persisting state in ``store``.

    ``on_event(host, step, status, reason)`` is called for live progress.
    """

    def __init__(self, plan: MigrationPlan, store: StateStore, run_step: RunStep,
                 on_event: Callable[[str, str, str, str], None] | None = None,
                 clock: Callable[[], dt.datetime] | None = None):
        self.plan = plan
        self.store = store
        self.run_step = run_step
        self.on_event = on_event or (lambda *a: None)
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.state: MigrationState = self._load()

    def _load(self) -> MigrationState:
        if not self.store.exists():
            return new_state(self.plan)
        st = self.store.load()
        if st.plan_id != self.plan.plan_id:
            raise MigrationFailed(f"{self.store.path} belongs to plan {st.plan_id}, not {self.plan.plan_id}: "
                                  f"use another --state-dir for a new plan")
        return st

    def _save(self) -> None:
        self.store.save(self.state)

    def run(self, waves: list[int] | None = None) -> list[WaveReport]:
        numbers = waves or [w.number for w in self.plan.waves]
        for n in numbers:
            if not 1 <= n <= len(self.plan.waves):
                raise NotFound(f"wave {n}: the plan has waves 1..{len(self.plan.waves)}")
        reports = []
        for n in numbers:
            reports.append(self.run_wave(n))
        return reports

    def run_wave(self, n: int) -> WaveReport:
        wave = self.plan.waves[n - 1]
        # interrupted (running) or failed steps of this wave's hosts are tried again
        self.state = retry_failed(self.state, list(wave.hosts))
        self._save()
        report = WaveReport(wave=n)
        for step in STEPS:
            hosts, held = runnable(self.state, self.plan, n, step)
            for h, why in held:
                report.held[h] = why
            if not hosts:
                continue
            for h in hosts:
                self.state = start_step(self.state, h, step, self.clock())
                self.on_event(h, step, "running", "")
            self._save()
            outcome = self.run_step(step, hosts, n, _StepReporter(self, step))
            for h in hosts:
                if self.state.host(h).step(step).status == "running":
                    self._finish(h, step, False, f"did not finish (playbook {outcome.status}, rc {outcome.rc})")
            if step == "precheck":
                bad = {h: self.state.host(h).step(step).reason for h in hosts
                       if self.state.host(h).step(step).status == "failed"}
                if bad:
                    raise MigrationFailed(
                        f"wave {n}: destination precheck failed, nothing was copied:\n"
                        + "\n".join(f"  {h}: {why}" for h, why in sorted(bad.items())))
        for h in wave.hosts:
            hs = self.state.host(h)
            if hs.status == "migrated":
                report.migrated.append(h)
            elif hs.status == "failed":
                report.failed[h] = hs.failure
        return report

    def _finish(self, host: str, step: str, ok: bool, reason: str) -> None:
        self.state = finish_step(self.state, host, step, ok, reason, self.clock())
        self._save()
        self.on_event(host, step, "done" if ok else "failed", reason)

    def rollback(self, hosts: list[str] | tuple[str, ...],
                 run_rollback: Callable[[tuple[str, ...]], tuple[StepOutcome, set[str], dict[str, str]]]) -> None:
        """Roll ``hosts`` back in one run; ``run_rollback`` returns (outcome, hosts done, reasons of the others).
        Hosts rolled back have every step pending again; the others are named in the error."""
        for h in hosts:
            if h not in self.state.hosts:
                raise NotFound(f"host {h!r} is not in the plan")
        outcome, done, failures = run_rollback(tuple(hosts))
        for h in hosts:
            if h in done:
                self.state = reset_host(self.state, h, self.clock())
                self.on_event(h, "rollback", "done", "")
        self._save()
        bad = [h for h in hosts if h not in done]
        if bad:
            raise MigrationFailed(f"rollback did not finish for {', '.join(bad)} (playbook {outcome.status}, "
                                  f"rc {outcome.rc}): " + "; ".join(f"{h}: {failures.get(h, '?')}" for h in bad))


class _StepReporter:
    def __init__(self, orch: Orchestrator, step: str):
        self.orch = orch
        self.step = step

    def done(self, host: str) -> None:
        if host in self.orch.state.hosts and self.orch.state.host(host).step(self.step).status == "running":
            self.orch._finish(host, self.step, True, "")

    def failed(self, host: str, reason: str) -> None:
        if host in self.orch.state.hosts and self.orch.state.host(host).step(self.step).status == "running":
            self.orch._finish(host, self.step, False, reason)
