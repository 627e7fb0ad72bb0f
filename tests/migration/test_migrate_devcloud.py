"""End to end, all real: `yunshang migrate` moves sshd hosts (127.0.0.N, under unshare) into a tenant
on the devcloud through ansible-runner: two waves, a kill mid-wave and resume, an unreachable host,
a precheck failure before any copy, rollback leaving nothing behind, no secret in any artifact."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import sshhosts
from sshhosts import OPERATOR, PROJECT, tree_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.cloud


def yunshang(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def run_env(devcloud, key):
    return {"OS_CLIENT_CONFIG_FILE": devcloud.clouds_file, "YUNSHANG_MIGRATE_SSH_KEY": key,
            "YUNSHANG_MIGRATE_SOURCE_PYTHON": "/usr/bin/python3"}


def write_survey(path, rows):
    with open(path, "w") as fh:
        yaml.safe_dump({"hosts": rows}, fh, sort_keys=False)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """Like a crash: SIGKILL the CLI and everything it started (ansible-playbook, workers, ssh, rsync)."""
    pids = [proc.pid] + descendants(proc.pid)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    for sock in glob.glob("/tmp/ys-cp-*/*"):   # ControlPersist masters of the killed run
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10)
    for d in glob.glob("/tmp/ys-cp-*"):
        if not os.listdir(d):
            os.rmdir(d)


def load_state(state_dir: str) -> dict:
    try:
        with open(os.path.join(state_dir, "state.json")) as fh:
            return json.load(fh)
    except (FileNotFoundError, ValueError):
        return {"hosts": {}}


def step_runs(state_dir: str, step: str) -> list[set[str]]:
    """For each ansible-runner job of ``step``: the hosts whose step was recorded done in it."""
    runs = []
    for job in sorted(glob.glob(os.path.join(state_dir, "runner", "artifacts", f"w*-{step}-*"))):
        hosts = set()
        for ev in glob.glob(os.path.join(job, "job_events", "*.json")):
            with open(ev) as fh:
                e = json.load(fh)
            d = e.get("event_data", {})
            if e.get("event") == "runner_on_ok" and d.get("task") == "Record step done":
                hosts.add(d.get("host"))
        runs.append(hosts)
    return runs


def test_two_waves_kill_resume_unreachable_rollback(devcloud, ssh_hosts, ssh_key, dest_tenant, admin_conn,
                                                   cloud_password, tmp_path):
    from yunshang.openstack.migration import leftovers

    m1, m2, m3, m4 = ssh_hosts
    down = sshhosts.SshHost("m5", "127.0.0.9", sshhosts.PORT, root="/nonexistent")   # no sshd there
    rows = sshhosts.survey_rows([m1, m2, m3, m4, down], {"m4": ["m1"]}, "mtest", OPERATOR)
    survey = tmp_path / "survey.yaml"
    write_survey(survey, rows)
    plan_file = tmp_path / "plan.json"
    r = yunshang("migrate", "plan", str(survey), "--plan-out", str(plan_file), "--max-per-wave", "4")
    assert r.returncode == 0, r.stderr
    plan = json.loads(plan_file.read_text())
    assert [w["hosts"] for w in plan["waves"]] == [["m1", "m2", "m3", "m5"], ["m4"]]

    state_dir = str(tmp_path / "state")
    env = run_env(devcloud, ssh_key)
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "migrate", "run", str(plan_file),
           "--state-dir", state_dir]
    log = open(tmp_path / "run1.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True)
    # kill mid-wave 1: as soon as one host has its disk converted (import/boot/verify/cutover still ahead)
    deadline = time.monotonic() + 900
    while True:
        st = load_state(state_dir)
        if any(h["steps"]["convert"]["status"] == "done" for h in st["hosts"].values()):
            break
        assert proc.poll() is None, f"run ended before the kill: {(tmp_path / 'run1.log').read_text()[-2000:]}"
        assert time.monotonic() < deadline, "no host converted within 15 minutes"
        time.sleep(0.2)
    kill_tree(proc)
    at_kill = load_state(state_dir)
    done_at_kill = {(h, s) for h, v in at_kill["hosts"].items() for s, x in v["steps"].items() if x["status"] == "done"}
    assert ("m1", "cutover") not in done_at_kill and ("m1", "sync") in done_at_kill
    assert at_kill["hosts"]["m5"]["steps"]["discover"]["status"] == "failed"
    assert "unreachable" in at_kill["hosts"]["m5"]["steps"]["discover"]["reason"]
    assert "127.0.0.9" in at_kill["hosts"]["m5"]["steps"]["discover"]["reason"]
    images_at_kill = {h: json.load(open(p))["image_id"]
                      for h in ("m1", "m2", "m3") if os.path.exists(p := os.path.join(state_dir, "records", h, "import.json"))}

    # resume: the same command; finishes, but exits 5 because m5 stays unreachable
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "1 host(s) failed: m5: discover: unreachable" in r.stderr
    st = load_state(state_dir)
    assert {h: v["steps"]["cutover"]["status"] for h, v in st["hosts"].items()} == {
        "m1": "done", "m2": "done", "m3": "done", "m4": "done", "m5": "pending"}
    # nothing finished before the kill was done again: one attempt, and no later job recorded it
    for h, s in done_at_kill:
        assert st["hosts"][h]["steps"][s]["attempts"] == 1, (h, s)
        later_runs = step_runs(state_dir, s)[1:]
        assert all(h not in hosts for hosts in later_runs), (h, s, later_runs)
    for h, image_id in images_at_kill.items():
        assert json.load(open(os.path.join(state_dir, "records", h, "import.json")))["image_id"] == image_id

    # data: the staged copy equals the source, file by file; the image in Glance is the converted disk
    for h in (m1, m2, m3, m4):
        for sub in ("app/data", "app/conf"):
            src = tree_sha256(os.path.join(h.root, sub))
            copy = tree_sha256(os.path.join(state_dir, "staging", h.name, "data", "srv", sub))
            assert src == copy and len(src) >= 3, (h.name, sub)
        verify = json.load(open(os.path.join(state_dir, "records", h.name, "verify.json")))
        assert verify["ok"] and verify["data_checksums_match"] and verify["checks"]["image_sha512_matches"]
        conv = json.load(open(os.path.join(state_dir, "records", h.name, "convert.json")))
        with open(conv["file"], "rb") as fh:
            assert hashlib.sha512(fh.read()).hexdigest() == conv["sha512"]
    pconn = admin_conn.connect_as(project_id=dest_tenant.id, project_domain_id=dest_tenant.domain_id)
    servers = {s.name: s for s in pconn.compute.servers()}
    for name in ("m1", "m2", "m3", "m4"):
        assert servers[name].status == "ACTIVE" and "mtest-net" in servers[name].addresses
    assert "m5" not in servers

    # status through the CLI
    r = yunshang("migrate", "status", "--state-dir", state_dir, "-o", "json")
    assert r.returncode == 0
    assert {h: v["status"] for h, v in json.loads(r.stdout)["hosts"].items()} == {
        "m1": "migrated", "m2": "migrated", "m3": "migrated", "m4": "migrated", "m5": "failed"}

    # no secret anywhere: neither the SSH private key nor the cloud password
    key_body = "".join(open(ssh_key).read().splitlines()[1:-1])
    secrets = [cloud_password, key_body[:40], key_body[-40:]]
    for path in glob.glob(os.path.join(state_dir, "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.startswith(os.path.join(state_dir, "staging")):
            text = open(path, "rb").read().decode("utf-8", "replace")
            for s in secrets:
                assert s not in text, f"secret found in {path}"
    for s in secrets:
        assert s not in r.stdout + r.stderr + (tmp_path / "run1.log").read_text()

    # rollback: nothing of the host left in the cloud; twice is fine; the source is untouched
    before = tree_sha256(os.path.join(m2.root, "app"))
    for _ in range(2):
        r = yunshang("migrate", "rollback", "m2", "--state-dir", state_dir, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    assert leftovers(admin_conn, PROJECT, "m2") == {"servers": [], "volumes": [], "images": []}
    assert tree_sha256(os.path.join(m2.root, "app")) == before
    assert not os.path.exists(os.path.join(state_dir, "staging", "m2"))
    assert load_state(state_dir)["hosts"]["m2"]["rolled_back_at"]
    r = yunshang("migrate", "rollback", "m1", "m3", "m4", "--state-dir", state_dir, env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert leftovers(admin_conn, PROJECT) == {"servers": [], "volumes": [], "images": []}


def test_precheck_failure_stops_before_any_copy(devcloud, ssh_hosts, ssh_key, dest_tenant, tmp_path):
    m1 = ssh_hosts[0]
    rows = sshhosts.survey_rows([m1], {}, "mtest", OPERATOR,
                                extra={"m1": {"services": [{"name": "pg", "port": 5432, "check": "tcp"}]}})
    write_survey(tmp_path / "s.yaml", rows)
    assert yunshang("migrate", "plan", str(tmp_path / "s.yaml"), "--plan-out", str(tmp_path / "p.json")).returncode == 0
    state_dir = str(tmp_path / "state")
    r = yunshang("migrate", "run", str(tmp_path / "p.json"), "--state-dir", state_dir,
                 env=run_env(devcloud, ssh_key), timeout=900)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "destination precheck failed, nothing was copied" in r.stderr
    assert "no security group of dept-mtest allows tcp port(s) 5432 (pg)" in r.stderr
    st = load_state(state_dir)["hosts"]["m1"]["steps"]
    assert st["precheck"]["status"] == "failed" and st["sync"]["status"] == "pending"
    assert os.listdir(os.path.join(state_dir, "staging")) == []          # not one byte copied
    assert not glob.glob(os.path.join(state_dir, "runner", "artifacts", "w1-sync-*"))
