"""The sync_data step against a real sshd host, no cloud: an exact copy with its manifest, a warm sync
of a source whose files change during the copy (recorded, not failed, and the next sync is clean),
and a final sync that refuses to pass while the source still changes."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading

import pytest

import sshhosts
from sshhosts import tree_sha256
from cli.migrate import AnsibleStepRunner
from yunshang.migration.plan import build_plan
from yunshang.migration.state import write_json_atomic
from yunshang.migration.survey import survey_from_dicts
from yunshang.migration.waves import WaveOptions


@pytest.fixture(scope="module")
def host(tmp_path_factory, ssh_key):
    h = sshhosts.start_host("sync1", 40, str(tmp_path_factory.mktemp("synchosts")), ssh_key)
    try:
        sshhosts.seed_host(h, data_files=12, file_bytes=128 * 1024, disk_mb=8)
        yield h
    finally:
        h.stop()


class Runner(AnsibleStepRunner):
    mode = "warm"

    def extravars(self):
        return {**super().extravars(), "sync_data_mode": self.mode}


def make_runner(state_dir, h, key, mode="warm") -> Runner:
    survey = survey_from_dicts(sshhosts.survey_rows([h], {}, "mtest", "telecom"))
    plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
    r = Runner(str(state_dir), plan, os.devnull, key, source_python="/usr/bin/python3")
    r.mode = mode
    write_json_atomic(r.plan_file, plan.to_dict())
    return r


def step(r: Runner, playbook: str, role: str, name: str):
    _, done, failures = r.run_playbook(playbook, role, (name,), f"t-{role}-{os.urandom(4).hex()}")
    return name in done, failures.get(name, "")


def record(r: Runner, name: str, which: str) -> dict:
    with open(os.path.join(r.records_dir, name, f"{which}.json")) as fh:
        return json.load(fh)


class Writer:
    """A service writing on the source while it is synced: appends to a file every few ms."""

    def __init__(self, path: str):
        self.path, self.stop_evt = path, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_evt.is_set():
            with open(self.path, "ab") as fh:
                fh.write(os.urandom(512))
            self.stop_evt.wait(0.003)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_evt.set()
        self.t.join()


def test_sync_is_an_exact_copy_with_a_manifest(tmp_path, host, ssh_key):
    r = make_runner(tmp_path, host, ssh_key)
    assert step(r, "discover_hosts.yml", "discover_hosts", host.name)[0]
    ok, why = step(r, "sync_data.yml", "sync_data", host.name)
    assert ok, why
    staged = os.path.join(r.staging_dir, host.name, "data", "srv", "app")
    assert tree_sha256(staged) == tree_sha256(os.path.join(host.root, "app"))
    rec = record(r, host.name, "sync")
    assert rec["mode"] == "warm" and rec["changed_during_copy"] == []
    assert rec["files"] == len(tree_sha256(os.path.join(host.root, "app")))
    with open(os.path.join(r.staging_dir, host.name, "manifest.sha256"), "rb") as fh:
        manifest = fh.read()
    assert rec["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert manifest.count(b"\n") == rec["files"]


def test_warm_sync_records_files_changing_during_the_copy_and_the_next_sync_is_clean(tmp_path, host, ssh_key):
    live = os.path.join(host.root, "app", "data", "live.log")
    r = make_runner(tmp_path, host, ssh_key)
    assert step(r, "discover_hosts.yml", "discover_hosts", host.name)[0]
    try:
        with Writer(live):
            ok, why = step(r, "sync_data.yml", "sync_data", host.name)
        assert ok, why                            # a warm sync does not fail on a running service
        assert record(r, host.name, "sync")["changed_during_copy"] == ["/srv/app/data/live.log"]
        ok, why = step(r, "sync_data.yml", "sync_data", host.name)   # the source is quiet now
        assert ok, why
        rec = record(r, host.name, "sync")
        assert rec["changed_during_copy"] == [] and rec["changed_items"] > 0   # live.log copied again
        assert tree_sha256(os.path.join(r.staging_dir, host.name, "data", "srv", "app")) == tree_sha256(os.path.join(host.root, "app"))
    finally:
        os.unlink(live)


def test_final_sync_fails_while_the_source_still_changes(tmp_path, host, ssh_key):
    live = os.path.join(host.root, "app", "data", "live.log")
    r = make_runner(tmp_path, host, ssh_key, mode="final")
    assert step(r, "discover_hosts.yml", "discover_hosts", host.name)[0]
    try:
        with Writer(live):
            ok, why = step(r, "sync_data.yml", "sync_data", host.name)
        assert not ok
        assert "checksums differ: 1 file(s)" in why and "/srv/app/data/live.log" in why, why
        assert "stop its services" in why
        assert not os.path.exists(os.path.join(r.records_dir, host.name, "cutover-sync.json"))
        ok, why = step(r, "sync_data.yml", "sync_data", host.name)   # services stopped: the final sync passes
        assert ok, why
        assert record(r, host.name, "cutover-sync")["changed_during_copy"] == []
    finally:
        os.unlink(live)
