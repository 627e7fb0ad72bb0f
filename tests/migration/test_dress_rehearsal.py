"""Dress rehearsal, all real: a source host whose service keeps writing during the warm syncs (a
writer process appending to a log and replacing a state file by rename, as databases and
config writers do) is moved into dept-mtest on the devcloud step by step with the real
playbooks; the cutover stops the service (once its data connection is open); the cutover passes and re-hashes only
what the service wrote; the data staged for the new server equals the source byte for byte.

What "the new server's data" is here: the devcloud's compute driver is fake, so the server has
no disk to read back. Its data is the staged copy on the conversion host (what the data volume
is filled from), as in test_migrate_devcloud.py; that is what is compared with the source. The
writer runs on this machine writing into the host's /srv (a bind mount); the cutover stops it by
running `kill` on the source over ssh (the hosts share this machine's process namespace).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import pytest

import sshhosts
from sshhosts import OPERATOR, PROJECT
from cli.migrate import ROLE_OF, AnsibleStepRunner
from yunshang.migration.plan import build_plan
from yunshang.migration.state import PLAYBOOKS, ROLLBACK_PLAYBOOK, write_json_atomic
from yunshang.migration.survey import survey_from_dicts
from yunshang.migration.waves import WaveOptions

pytestmark = pytest.mark.cloud

WRITER = r"""
import os, sys, time
d = sys.argv[1]
with open(sys.argv[2], "w") as fh:
    fh.write(str(os.getpid()))
i = 0
while True:
    with open(os.path.join(d, "live.log"), "ab") as fh:
        fh.write(os.urandom(512))
    if i % 25 == 0:
        with open(os.path.join(d, ".state.tmp"), "wb") as fh:
            fh.write(os.urandom(8192))
        os.replace(os.path.join(d, ".state.tmp"), os.path.join(d, "state.db"))
    i += 1
    time.sleep(0.002)
"""


class Runner(AnsibleStepRunner):
    """The survey's service is stopped by the cutover, on the source, over its ssh connection."""

    def extravars(self):
        return {**super().extravars(), "cutover_host_stop_commands": ["kill $(cat /srv/run/writer.pid)"]}


def tree_bytes(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def test_dress_rehearsal_service_writing_during_warm_syncs(devcloud, ssh_key, dest_tenant, admin_conn, tmp_path):
    from yunshang.openstack.migration import leftovers

    h = sshhosts.start_host("dr1", 44, str(tmp_path / "hosts"), ssh_key)
    writer = None
    runner = None
    try:
        sshhosts.seed_host(h, data_files=24, file_bytes=256 * 1024, disk_mb=8)
        survey = survey_from_dicts(sshhosts.survey_rows([h], {}, "mtest", OPERATOR))
        plan = build_plan(survey, WaveOptions(), dt.datetime(2026, 11, 23, 9, 0))
        runner = Runner(str(tmp_path / "state"), plan, devcloud.clouds_file, ssh_key, source_python="/usr/bin/python3")
        write_json_atomic(runner.plan_file, plan.to_dict())

        def step(name: str) -> None:
            ident = f"dr-{name}-{os.urandom(4).hex()}"
            _, done, failures = runner.run_playbook(PLAYBOOKS[name], ROLE_OF[name], (h.name,), ident)
            assert h.name in done, (name, failures)

        def rec(name: str) -> dict:
            with open(os.path.join(runner.records_dir, h.name, f"{name}.json")) as fh:
                return json.load(fh)

        data = os.path.join(h.root, "app", "data")
        os.makedirs(os.path.join(h.root, "run"))            # /srv/run on the host: not a data path
        writer = subprocess.Popen([sys.executable, "-c", WRITER, data, os.path.join(h.root, "run", "writer.pid")])
        step("discover")
        step("precheck")
        changed = []
        for _ in range(2):                       # warm syncs while the service writes
            step("sync")
            changed += rec("sync")["changed_during_copy"]
        assert writer.poll() is None, "the writer stopped by itself"
        assert set(changed) <= {"/srv/app/data/live.log", "/srv/app/data/state.db"}
        for name in ("convert", "import", "boot", "verify"):
            step(name)
        step("cutover")                          # stops the service on the source (cutover_host_stop_commands)
        assert writer.wait(timeout=30) == -signal.SIGTERM
        writer = None

        cut = rec("cutover-sync")
        assert cut["mode"] == "final" and cut["changed_during_copy"] == [] and cut["files"] == cut["verified"]
        # only what the service wrote since the last warm sync was hashed again (not all 28 files)
        assert 0 < cut["hashed"]["source"] <= 2 and cut["carried"]["source"] >= cut["files"] - 2, cut
        assert rec("cutover")["data"]["manifest_digest"] == cut["manifest_digest"] and cut["algorithm"] == "sha256"
        src = tree_bytes(os.path.join(h.root, "app"))
        staged = tree_bytes(os.path.join(runner.staging_dir, h.name, "data", "srv", "app"))
        assert staged.keys() == src.keys() and "data/live.log" in src and "data/state.db" in src
        for path, content in src.items():
            assert staged[path] == content, path          # byte for byte
        assert len(src["data/live.log"]) > 512
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        if runner is not None:
            _, done, failures = runner.run_playbook(ROLLBACK_PLAYBOOK, ROLE_OF["rollback"], (h.name,),
                                                    f"dr-rollback-{os.urandom(4).hex()}")
            assert h.name in done, failures
            assert leftovers(admin_conn, PROJECT, h.name) == {"servers": [], "volumes": [], "images": []}
        h.stop()
