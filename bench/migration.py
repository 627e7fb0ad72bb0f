"""Benchmark of the migration data path and orchestration, against baselines in the same run.

1. Data path throughput: the sync_data step's rsync (as the playbook runs it, through
   ansible-runner, on a real sshd host) vs a plain `rsync -a` of the same data over
   ssh on the same machine. Goal >= 0.9x. The full step (rsync + sha256 on both sides
   + record) is reported too.
2. Orchestration overhead per host per step: wall time of each step job minus the time
   its work commands (rsync, sha256sum, qemu-img, ...) took, per host.
3. Wave speed-up: discover + sync + convert for a wave of N hosts (default 8) in one
   run per step (forks = N) vs the same hosts one at a time.

No cloud needed (the cloud steps' cost is the devcloud's, not ours).
Usage: .venv/bin/python bench/migration.py [--hosts 8] [--data-mb 128]
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

WORK_TASKS = ("Copy the data paths with rsync", "Checksum the data on the source", "Checksum the staged copy",
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


def run_step(runner: AnsibleStepRunner, playbook: str, role: str, hosts: tuple[str, ...]) -> tuple[float, float, dict]:
    """(wall seconds, work seconds summed over hosts, {task: max duration})"""
    ident = f"bench-{playbook}-{time.time_ns()}"
    t0 = time.perf_counter()
    outcome, done, failures = runner.run_playbook(playbook, role, hosts, ident)
    wall = time.perf_counter() - t0
    if set(done) != set(hosts):
        raise SystemExit(f"{playbook} failed: {failures}")
    work = 0.0
    per_task: dict[str, float] = {}
    for e in job_events(runner, ident):
        d = e.get("event_data", {})
        if e.get("event") == "runner_on_ok" and any(d.get("task", "").startswith(t) for t in WORK_TASKS):
            work += float(d.get("duration") or 0)
            per_task[d["task"]] = max(per_task.get(d["task"], 0.0), float(d.get("duration") or 0))
    return wall, work, per_task


def plain_rsync_seconds(host, key: str, dest: str) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(["rsync", "-a", "--rsh", f"ssh -p {host.port} -i {key} -o BatchMode=yes -o ControlMaster=no "
                    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    f"root@{host.address}:/srv/app/data/", f"root@{host.address}:/srv/app/conf/", dest + "/"],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--data-mb", type=int, default=128, help="data on the throughput host")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    missing = sshhosts.missing_tools()
    if missing:
        raise SystemExit(f"bench/migration.py needs {', '.join(missing)} (run `make system-deps`)")
    work = tempfile.mkdtemp(prefix="ys-bench-mig-")
    key = sshhosts.make_key(os.path.join(work, "keys"))
    hosts = []
    try:
        # ---- 1. throughput: one host with --data-mb of incompressible data
        big = sshhosts.start_host("tp1", 20, os.path.join(work, "hosts"), key)
        hosts.append(big)
        files = max(1, args.data_mb // 4)
        sshhosts.seed_host(big, data_files=files, file_bytes=4 * 1024 * 1024, disk_mb=16)
        data_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(big.root, "app", "**", "*"), recursive=True)
                         if os.path.isfile(p))
        plain, ours, step = [], [], []
        for i in range(args.rounds):
            plain.append(plain_rsync_seconds(big, key, os.path.join(work, "plain")))
            r = make_runner(work, [big], key, f"tp-{i}")        # fresh staging each round: a full copy
            run_step(r, "discover_hosts.yml", "discover_hosts", (big.name,))
            wall, _, per_task = run_step(r, "sync_data.yml", "sync_data", (big.name,))
            ours.append(per_task["Copy the data paths with rsync (the source is only read)"])
            step.append(wall)
        mib = data_bytes / 2**20
        p_med, o_med, s_med = statistics.median(plain), statistics.median(ours), statistics.median(step)
        print(f"\n## 1. data path throughput ({mib:.0f} MiB, median of {args.rounds})")
        print("| path | seconds | MiB/s | ratio vs plain rsync |\n|---|---|---|---|")
        print(f"| plain `rsync -a` over ssh (baseline) | {p_med:.2f} | {mib / p_med:.0f} | 1.00x |")
        print(f"| sync_data rsync task (through ansible-runner) | {o_med:.2f} | {mib / o_med:.0f} | {p_med / o_med:.2f}x |")
        print(f"| whole sync_data step (rsync + sha256 both sides + record) | {s_med:.2f} | {mib / s_med:.0f} | {p_med / s_med:.2f}x |")

        # ---- 2 + 3. a wave of N small hosts: all at once vs one at a time
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
            wall, work_s, _ = run_step(r, pb, role, tuple(h.name for h in wave))
            par_wall += wall
            overhead[role] = (wall * len(wave) - work_s) / len(wave)
        seq_wall, seq_overhead = 0.0, {role: [] for _, role in steps}
        for h in wave:
            r1 = make_runner(work, [h], key, f"seq-{h.name}")
            for pb, role in steps:
                wall, work_s, _ = run_step(r1, pb, role, (h.name,))
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
