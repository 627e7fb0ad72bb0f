"""The sync_data step against a real sshd host, no cloud: an exact copy with its manifest, a warm sync
of a source whose files change during the copy (recorded, not failed, and the next sync is clean),
and a final sync that refuses to pass while the source still changes."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time

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


def make_runner(state_dir, h, key, mode="warm", algorithm="") -> Runner:
    survey = survey_from_dicts(sshhosts.survey_rows([h], {}, "mtest", "telecom"))
    plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
    r = Runner(str(state_dir), plan, os.devnull, key, source_python="/usr/bin/python3", hash_algorithm=algorithm)
    r.mode = mode
    write_json_atomic(r.plan_file, plan.to_dict())
    return r


@pytest.fixture
def fresh(tmp_path, ssh_key):
    """A host of its own for a test that changes the source's data."""
    h = sshhosts.start_host("sync2", 43, str(tmp_path / "hosts"), ssh_key)
    try:
        sshhosts.seed_host(h, data_files=12, file_bytes=128 * 1024, disk_mb=8)
        backdate(h)
        yield h
    finally:
        h.stop()


def backdate(h) -> None:
    """The seeded files were written seconds ago; a sync right away would find them 'racy' (changed
    within --racy-seconds of being read) and re-hash them next time. A real host's data is older."""
    time.sleep(1.2)


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
    with open(os.path.join(r.staging_dir, host.name, "manifest.jsonl"), "rb") as fh:
        manifest = fh.read()
    assert rec["algorithm"] == "sha256"
    assert rec["manifest_digest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    head, *entries = [json.loads(line) for line in manifest.splitlines()]
    assert head["algorithm"] == "sha256" and head["files"] == rec["files"] == rec["verified"] == len(entries)
    src = tree_sha256(os.path.join(host.root, "app"))
    assert {e[0]: e[1] for e in entries} == {"srv/app/" + p: d for p, d in src.items()}   # the digests are real


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
        staged = os.path.join(r.staging_dir, host.name, "data", "srv", "app")
        assert tree_sha256(staged) == tree_sha256(os.path.join(host.root, "app"))
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


def test_cutover_rehashes_only_what_changed_and_accounts_for_every_file(tmp_path, fresh, ssh_key):
    """After a verified warm sync, the final sync hashes only the files that changed (both sides);
    every other file is shown unchanged by its stat key against the manifest."""
    warm = make_runner(tmp_path, fresh, ssh_key)
    assert step(warm, "discover_hosts.yml", "discover_hosts", fresh.name)[0]
    assert step(warm, "sync_data.yml", "sync_data", fresh.name)[0]
    total = record(warm, fresh.name, "sync")["files"]
    data = os.path.join(fresh.root, "app", "data")
    with open(os.path.join(data, "f0003.bin"), "r+b") as fh:          # changed in place
        fh.write(b"changed")
    with open(os.path.join(data, "added.bin"), "wb") as fh:           # new
        fh.write(os.urandom(1000))
    os.unlink(os.path.join(data, "f0007.bin"))                         # deleted
    # past the racy window (a file whose ctime is within sync_data_racy_seconds of its read is
    # re-hashed next time too): here the cutover comes more than a second after the last write
    time.sleep(1.5)
    final = make_runner(tmp_path, fresh, ssh_key, mode="final")
    ok, why = step(final, "sync_data.yml", "sync_data", fresh.name)
    assert ok, why
    rec = record(final, fresh.name, "cutover-sync")
    assert rec["hashed"] == {"source": 2, "copy": 2}, rec
    assert rec["carried"] == {"source": total - 2, "copy": total - 2}, rec
    assert rec["files"] == rec["verified"] == total and rec["changed_during_copy"] == []
    assert tree_sha256(os.path.join(final.staging_dir, fresh.name, "data", "srv", "app")) == tree_sha256(
        os.path.join(fresh.root, "app"))
    ok, why = step(final, "sync_data.yml", "sync_data", fresh.name)    # nothing changed: nothing hashed
    assert ok, why
    assert record(final, fresh.name, "cutover-sync")["hashed"] == {"source": 0, "copy": 0}


def test_final_sync_catches_changes_rsync_cannot_see(tmp_path, fresh, ssh_key):
    """Same size and mtime put back: rsync's quick check skips the file, its ctime does not lie.
    On the source the cutover fails naming it; in the copy (a corrupted staged file) too. The
    differing copy is removed, so the cutover run again copies it and passes."""
    r = make_runner(tmp_path, fresh, ssh_key)
    assert step(r, "discover_hosts.yml", "discover_hosts", fresh.name)[0]
    assert step(r, "sync_data.yml", "sync_data", fresh.name)[0]
    final = make_runner(tmp_path, fresh, ssh_key, mode="final")
    staged = os.path.join(final.staging_dir, fresh.name, "data", "srv", "app")
    for side, rel in ((fresh.root, "app/data/f0005.bin"), (os.path.dirname(staged), "app/conf/f0001.bin")):
        p = os.path.join(side, rel)
        st = os.stat(p)
        with open(p, "r+b") as fh:
            b = fh.read(1)
            fh.seek(0)
            fh.write(bytes([b[0] ^ 0xFF]))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        ok, why = step(final, "sync_data.yml", "sync_data", fresh.name)
        assert not ok and "checksums differ: 1 file(s)" in why and "/srv/" + rel in why, why
        ok, why = step(final, "sync_data.yml", "sync_data", fresh.name)
        assert ok, why
        assert tree_sha256(staged) == tree_sha256(os.path.join(fresh.root, "app"))


def test_sm3_evidence_names_its_algorithm(tmp_path, fresh, ssh_key):
    import hashlib as h

    if "sm3" not in h.algorithms_available:
        pytest.fail("this machine's OpenSSL has no SM3 (Debian 12's has)")
    r = make_runner(tmp_path, fresh, ssh_key, algorithm="sm3")
    assert step(r, "discover_hosts.yml", "discover_hosts", fresh.name)[0]
    ok, why = step(r, "sync_data.yml", "sync_data", fresh.name)
    assert ok, why
    rec = record(r, fresh.name, "sync")
    with open(os.path.join(r.staging_dir, fresh.name, "manifest.jsonl"), "rb") as fh:
        manifest = fh.read()
    assert rec["algorithm"] == "sm3" and rec["manifest_digest"] == "sm3:" + h.new("sm3", manifest).hexdigest()
    head, *entries = [json.loads(line) for line in manifest.splitlines()]
    assert head["algorithm"] == "sm3"
    for path, digest, _, _ in entries:
        with open(os.path.join(fresh.root, path.removeprefix("srv/")), "rb") as fh:
            assert digest == h.new("sm3", fh.read()).hexdigest()
    # a different algorithm than the manifest's: nothing is carried, all re-hashed with it
    r2 = make_runner(tmp_path, fresh, ssh_key, mode="final", algorithm="sha256")
    ok, why = step(r2, "sync_data.yml", "sync_data", fresh.name)
    assert ok, why
    rec = record(r2, fresh.name, "cutover-sync")
    assert rec["algorithm"] == "sha256" and rec["hashed"] == {"source": rec["files"], "copy": rec["files"]}


NO_SM3_CNF = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
base = base_sect
[base_sect]
activate = 1
"""


def python_without_sm3(directory: str) -> str:
    """A real interpreter whose OpenSSL offers no SM3 (only its base provider loaded, as on a host
    whose OpenSSL was built without SM3): what `hashlib.new('sm3')` sees on such a host."""
    os.makedirs(directory, exist_ok=True)
    cnf = os.path.join(directory, "no-sm3.cnf")
    with open(cnf, "w") as fh:
        fh.write(NO_SM3_CNF)
    exe = os.path.join(directory, "python3-no-sm3")
    with open(exe, "w") as fh:
        fh.write(f"#!/bin/sh\nOPENSSL_CONF={cnf} exec /usr/bin/python3 \"$@\"\n")
    os.chmod(exe, 0o755)
    return exe


class PythonRunner(Runner):
    source_python = conversion_python = ""

    def extravars(self):
        return {**super().extravars(),
                **({"sync_data_source_python": self.source_python} if self.source_python else {}),
                **({"sync_data_python": self.conversion_python} if self.conversion_python else {})}


def test_sm3_refused_before_anything_is_copied_where_a_host_lacks_it(tmp_path, fresh, ssh_key):
    """The source's Python has no SM3: the warm sync is refused naming the source and what is
    missing, before rsync copied a byte; the same for the conversion host; sha256 still works."""
    survey = survey_from_dicts(sshhosts.survey_rows([fresh], {}, "mtest", "telecom"))
    plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
    r = PythonRunner(str(tmp_path / "state"), plan, os.devnull, ssh_key, source_python="/usr/bin/python3",
                     hash_algorithm="sm3")
    write_json_atomic(r.plan_file, plan.to_dict())
    assert step(r, "discover_hosts.yml", "discover_hosts", fresh.name)[0]
    staged = os.path.join(r.staging_dir, fresh.name, "data")
    r.source_python = python_without_sm3(os.path.join(fresh.root, "bin"))        # /srv/bin on the source
    ok, why = step(r, "sync_data.yml", "sync_data", fresh.name)
    assert not ok
    assert f"the source root@{fresh.address}" in why and "sm3 is not available" in why, why
    assert "no sm3 in hashlib" in why and "OpenSSL with SM3" in why and "nothing was copied" in why, why
    assert not os.path.exists(staged) or os.listdir(staged) == [], os.listdir(staged)
    assert not os.path.exists(os.path.join(r.records_dir, fresh.name, "sync.json"))
    r.source_python, r.conversion_python = "", python_without_sm3(str(tmp_path / "conv"))
    ok, why = step(r, "sync_data.yml", "sync_data", fresh.name)
    assert not ok and "the conversion host: sm3 is not available" in why and "nothing was copied" in why, why
    assert not os.path.exists(staged) or os.listdir(staged) == []
    # (that interpreter's OpenSSL config reaches its children: ssh there cannot run either)
    r.conversion_python, r.hash_algorithm = "", "sha256"
    ok, why = step(r, "sync_data.yml", "sync_data", fresh.name)
    assert ok, why
    assert record(r, fresh.name, "sync")["algorithm"] == "sha256"


class CutoverRunner(AnsibleStepRunner):
    stop_commands: list = []

    def extravars(self):
        return {**super().extravars(), "cutover_host_stop_commands": self.stop_commands}


def test_cutover_runs_the_stop_commands_on_the_source_in_the_window(tmp_path, fresh, ssh_key):
    """The stop commands run on the source once the sessions are open; a failing one fails the
    cutover naming it, before anything is copied; the passing cutover records when they ran."""
    survey = survey_from_dicts(sshhosts.survey_rows([fresh], {}, "mtest", "telecom"))
    plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
    r = CutoverRunner(str(tmp_path / "state"), plan, os.devnull, ssh_key, source_python="/usr/bin/python3")
    write_json_atomic(r.plan_file, plan.to_dict())
    assert step(r, "discover_hosts.yml", "discover_hosts", fresh.name)[0]
    assert step(r, "sync_data.yml", "sync_data", fresh.name)[0]
    d = os.path.join(r.records_dir, fresh.name)
    write_json_atomic(os.path.join(d, "boot.json"), {"server_id": "test", "volume_id": "test"})
    write_json_atomic(os.path.join(d, "verify.json"), {"ok": True, "data_checksums_match": True, "failed": []})
    with open(os.path.join(fresh.root, "app", "data", "f0002.bin"), "r+b") as fh:
        fh.write(b"changed")
    time.sleep(1.2)
    r.stop_commands = ["hostname > /srv/stopped-on", "echo 'cannot stop db' >&2; exit 3", "touch /srv/never"]
    ok, why = step(r, "cutover_host.yml", "cutover_host", fresh.name)
    assert not ok
    assert "stopping the source's services: command 2 of 3 (echo 'cannot stop db' >&2; exit 3) exited 3: cannot stop db" \
        in why, why
    with open(os.path.join(fresh.root, "stopped-on")) as fh:
        assert fh.read().strip() == fresh.name            # ran on the source (its own hostname), not here
    assert not os.path.exists(os.path.join(fresh.root, "never"))
    assert not os.path.exists(os.path.join(d, "cutover-sync.json")) and not os.path.exists(os.path.join(d, "cutover.json"))
    r.stop_commands = ["touch /srv/stopped"]
    t0 = time.time()
    ok, why = step(r, "cutover_host.yml", "cutover_host", fresh.name)
    assert ok, why
    assert os.path.exists(os.path.join(fresh.root, "stopped"))
    cut, sync = record(r, fresh.name, "cutover"), record(r, fresh.name, "cutover-sync")
    assert cut["services_stopped"] == sync["services_stopped"] == 1
    assert t0 < cut["stopped_at"] == sync["stopped_at"] < time.time()
    assert sync["hashed"] == {"source": 1, "copy": 1} and sync["files"] == sync["verified"]
    assert cut["data"]["manifest_digest"] == sync["manifest_digest"]
    assert tree_sha256(os.path.join(r.staging_dir, fresh.name, "data", "srv", "app")) == tree_sha256(
        os.path.join(fresh.root, "app"))
