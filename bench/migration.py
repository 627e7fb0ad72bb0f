"""Benchmark of the migration data path and orchestration, against baselines in the same run.

1. Data path throughput, per data size (default 128 MiB and 1 GiB of incompressible files on a
   real sshd host): the sync_data step's rsync as the playbook runs it through ansible-runner
   (its own run time, and the task with Ansible's fixed per-task cost) vs a plain `rsync -a` of
   the same data over ssh on the same machine (baseline A, goal >= 0.9x); and the whole step
   (rsync, then the source and the copy hashed at the same time, record) vs rsync followed by
   sha256sum of the source and of the copy done by hand (baseline B).
2. Orchestration overhead per host per step: wall time of each step job minus the time
   its work commands (rsync, sha256sum, qemu-img, ...) took, per host.
3. Wave speed-up: discover + sync + convert for a wave of N hosts (default 8) in one
   run per step (forks = N) vs the same hosts one at a time.

No cloud needed (the cloud steps' cost is the devcloud's, not ours).
Usage: .venv/bin/python bench/migration.py [--hosts 8] [--data-mb 128,1024] [--rounds 3] [--no-wave]
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "migration")]

import sshhosts  # noqa: E402

from cli.migrate import AnsibleStepRunner  # noqa: E402
from yunshang.migration.plan import build_plan  # noqa: E402
from yunshang.migration.state import write_json_atomic  # noqa: E402
from yunshang.migration.survey import survey_from_dicts  # noqa: E402
from yunshang.migration.waves import WaveOptions  # noqa: E402

GCM = "-o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"   # sync_data's default cipher order
RSYNC_TASK = "Copy the data paths with rsync (the source is only read)"
WORK_TASKS = ("Copy the data paths with rsync", "Checksum the source and the staged copy",
              "Survey ports, processes, data sizes", "Gather operating system", "Copy the disk image",
              "Convert to qcow2")


def make_runner(work: str, hosts: list, key: str, tag: str) -> AnsibleStepRunner:
    survey = survey_from_dicts(sshhosts.survey_rows(hosts, {}, "bench", "telecom"))
    plan = build_plan(survey, WaveOptions(max_hosts_per_wave=len(hosts), max_hosts_per_conversion_host=len(hosts)),
                      dt.datetime(2026, 11, 23, 9, 0))
    r = AnsibleStepRunner(os.path.join(work, tag), plan, os.devnull, key, source_python="/usr/bin/python3")
    write_json_atomic(r.plan_file, plan.to_dict())
    return r


def job_events(runner: AnsibleStepRunner, ident: str) -> list[dict]:
    out = []
    for f in glob.glob(os.path.join(runner.private_data_dir, "artifacts", ident, "job_events", "*.json")):
        with open(f) as fh:
            out.append(json.load(fh))
    return out


def command_seconds(res: dict) -> float:
    """The command's own run time as the command module measured it (its ``delta``, h:mm:ss.us)."""
    h, m, sec = str(res.get("delta") or "0:0:0").split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def run_step(runner: AnsibleStepRunner, playbook: str, role: str, hosts: tuple[str, ...]
             ) -> tuple[float, float, dict, dict]:
    """(wall seconds, work seconds summed over hosts, {task: max duration}, {task: max command delta})"""
    ident = f"bench-{playbook}-{time.time_ns()}"
    t0 = time.perf_counter()
    outcome, done, failures = runner.run_playbook(playbook, role, hosts, ident)
    wall = time.perf_counter() - t0
    if set(done) != set(hosts):
        raise SystemExit(f"{playbook} failed: {failures}")
    work = 0.0
    per_task: dict[str, float] = {}
    per_cmd: dict[str, float] = {}
    for e in job_events(runner, ident):
        d = e.get("event_data", {})
        if e.get("event") == "runner_on_ok" and any(d.get("task", "").startswith(t) for t in WORK_TASKS):
            work += float(d.get("duration") or 0)
            per_task[d["task"]] = max(per_task.get(d["task"], 0.0), float(d.get("duration") or 0))
            per_cmd[d["task"]] = max(per_cmd.get(d["task"], 0.0), command_seconds(d.get("res") or {}))
    return wall, work, per_task, per_cmd


def plain_rsync_seconds(host, key: str, dest: str, ssh_options: str = "") -> float:
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(["rsync", "-a", "--rsh", f"ssh -p {host.port} -i {key} -o BatchMode=yes -o ControlMaster=no "
                    f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {ssh_options}",
                    f"root@{host.address}:/srv/app/data", f"root@{host.address}:/srv/app/conf", dest + "/"],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def checksum_both_seconds(host, key: str, copy: str) -> float:
    """What an engineer does by hand after the rsync: sha256sum the source over ssh, then the copy."""
    sums = "find data conf -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum"
    t0 = time.perf_counter()
    src = subprocess.run(["ssh", "-p", str(host.port), "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", f"root@{host.address}", f"cd /srv/app && {sums}"],
                         check=True, capture_output=True).stdout
    dst = subprocess.run(["bash", "-c", f"cd {copy} && {sums}"],
                         check=True, capture_output=True).stdout
    seconds = time.perf_counter() - t0
    if src != dst:
        raise SystemExit("bench: the plain rsync's copy differs from the source")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--data-mb", type=lambda v: [int(x) for x in v.split(",")], default=[128, 1024],
                    help="data sizes of the throughput hosts, comma-separated (default 128,1024)")
    ap.add_argument("--no-wave", action="store_true", help="only the throughput part")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    missing = sshhosts.missing_tools()
    if missing:
        raise SystemExit(f"bench/migration.py needs {', '.join(missing)} (run `make system-deps`)")
    work = tempfile.mkdtemp(prefix="ys-bench-mig-")
    key = sshhosts.make_key(os.path.join(work, "keys"))
    hosts = []
    try:
        # ---- 1. throughput: one host per size with that much incompressible data
        print("\n## 1. data path throughput (median of %d rounds; ratio = baseline seconds / ours)" % args.rounds)
        print("| data | path | seconds | MiB/s | ratio |\n|---|---|---|---|---|")
        for k, size_mb in enumerate(args.data_mb):
            big = sshhosts.start_host(f"tp{k + 1}", 20 + k, os.path.join(work, "hosts"), key)
            hosts.append(big)
            sshhosts.seed_host(big, data_files=max(1, size_mb // 4), file_bytes=4 * 1024 * 1024, disk_mb=16)
            data_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(big.root, "app", "**", "*"),
                                                                  recursive=True) if os.path.isfile(p))
            plain, plain_gcm, by_hand, rsync_cmd, rsync_task, step = [], [], [], [], [], []

            def baselines(big=big) -> None:
                copy = os.path.join(work, "plain")
                plain_gcm.append(plain_rsync_seconds(big, key, copy, GCM))
                plain.append(plain_rsync_seconds(big, key, copy))
                by_hand.append(plain[-1] + checksum_both_seconds(big, key, copy))

            for i in range(args.rounds):
                r = make_runner(work, [big], key, f"tp{k}-{i}")     # fresh staging each round: a full copy
                run_step(r, "discover_hosts.yml", "discover_hosts", (big.name,))
                if i % 2 == 0:                                      # alternate the order against drift
                    baselines()
                wall, _, per_task, per_cmd = run_step(r, "sync_data.yml", "sync_data", (big.name,))
                rsync_task.append(per_task[RSYNC_TASK])
                rsync_cmd.append(per_cmd[RSYNC_TASK])
                step.append(wall)
                if i % 2 == 1:
                    baselines()
                shutil.rmtree(r.state_dir, ignore_errors=True)
            mib = data_bytes / 2**20
            med = {n: statistics.median(v) for n, v in (("plain", plain), ("gcm", plain_gcm), ("hand", by_hand), ("cmd", rsync_cmd),
                                                         ("task", rsync_task), ("step", step))}
            rows = (("plain `rsync -a` over ssh (baseline A)", med["plain"], med["plain"]),
                    ("plain `rsync -a`, ssh with sync_data's cipher order (AES-GCM first)", med["gcm"], med["plain"]),
                    ("sync_data's rsync command (its own run time)", med["cmd"], med["plain"]),
                    ("sync_data's rsync task (+ Ansible's per-task cost)", med["task"], med["plain"]),
                    ("rsync, then sha256sum source and copy by hand (baseline B)", med["hand"], med["hand"]),
                    ("whole sync_data step (rsync + both checksums + record)", med["step"], med["hand"]))
            for label, sec, base in rows:
                print(f"| {mib:.0f} MiB | {label} | {sec:.2f} | {mib / sec:.0f} | {base / sec:.2f}x |")

        # ---- 2 + 3. a wave of N small hosts: all at once vs one at a time
        if args.no_wave:
            return
        wave = []
        for i in range(args.hosts):
            h = sshhosts.start_host(f"w{i + 1}", 30 + i, os.path.join(work, "hosts"), key)
            sshhosts.seed_host(h, data_files=16, file_bytes=256 * 1024, disk_mb=32)
            hosts.append(h)
            wave.append(h)
        steps = [("discover_hosts.yml", "discover_hosts"), ("sync_data.yml", "sync_data"),
                 ("convert_disk.yml", "convert_disk")]
        r = make_runner(work, wave, key, "par")
        par_wall, overhead = 0.0, {}
        for pb, role in steps:
            wall, work_s, _, _ = run_step(r, pb, role, tuple(h.name for h in wave))
            par_wall += wall
            overhead[role] = (wall * len(wave) - work_s) / len(wave)
        seq_wall, seq_overhead = 0.0, {role: [] for _, role in steps}
        for h in wave:
            r1 = make_runner(work, [h], key, f"seq-{h.name}")
            for pb, role in steps:
                wall, work_s, _, _ = run_step(r1, pb, role, (h.name,))
                seq_wall += wall
                seq_overhead[role].append(wall - work_s)
        print(f"\n## 2. orchestration overhead per host per step (seconds; step wall time minus its work commands)")
        print("| step | one host alone | per host in a wave of %d |\n|---|---|---|" % len(wave))
        for _, role in steps:
            print(f"| {role} | {statistics.median(seq_overhead[role]):.2f} | {overhead[role]:.2f} |")
        print(f"\n## 3. a wave of {len(wave)} hosts (discover + sync + convert)")
        print("| mode | seconds | speed-up |\n|---|---|---|")
        print(f"| one host at a time (baseline) | {seq_wall:.1f} | 1.00x |")
        print(f"| whole wave in parallel (forks={len(wave)}) | {par_wall:.1f} | {seq_wall / par_wall:.2f}x |")
        print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        for h in hosts:
            h.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
