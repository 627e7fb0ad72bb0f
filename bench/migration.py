"""Benchmark of the migration data path: verified warm sync, cutover window by change, waves.

1. Per round, on a real sshd host with --data-mb of incompressible 4 MiB files (default 1 GiB):
   floors and baseline -- plain `rsync -a` over ssh (baseline), sync_data's rsync command alone
   (copy floor), both sides hashed at once with no copy (hash floor) -- then the verified warm
   sync (sync_data into a fresh staging directory: copy + both sides hashed + manifest + record),
   then the cutover window (cutover_host: final sync + verification + record) with 0 %, 1 % and
   10 % of the files rewritten since the last verified sync. Windows end at the end of the last
   "Record step done" (job events) and start at the sync task's start (warm sync) or at
   `stopped_at` (cutover: the moment the final sync's tool ran the stop commands -- one, `true`,
   on the bench's source -- with the server verified and the source's sessions open by then);
   ansible-playbook's start-up and the steps before the services stop are reported apart, and
   the cutover's window is broken down (the tool's pieces, Ansible's share).
2. (--wave) Orchestration overhead per host per step and the speed-up of a wave of N hosts.

No cloud needed: the cutover's boot/verify records, which a cloud run writes, are written by the
bench (labelled `bench`), so cutover_host runs for real on everything else.
Usage: .venv/bin/python bench/migration.py [--data-mb 1024] [--rounds 3] [--algorithm sha256] [--json] [--wave]
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import glob
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "migration"),
                os.path.join(ROOT, "playbooks", "project", "roles", "sync_data", "files")]

import sshhosts  # noqa: E402
from verified_sync import BOOT  # noqa: E402

from cli.migrate import AnsibleStepRunner  # noqa: E402
from yunshang.migration.plan import build_plan  # noqa: E402
from yunshang.migration.state import write_json_atomic  # noqa: E402
from yunshang.migration.survey import survey_from_dicts  # noqa: E402
from yunshang.migration.waves import WaveOptions  # noqa: E402

GCM = "-o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"   # sync_data's default cipher order
SYNC_TASK = "Copy the data paths with rsync and verify every file on both sides"
WORK_TASKS = (SYNC_TASK, "Survey ports, processes, data sizes", "Gather operating system", "Copy the disk image",
              "Convert to qcow2")
SCRIPT = os.path.join(ROOT, "playbooks", "project", "roles", "sync_data", "files", "verified_sync.py")
SSH_OPTS = "-o BatchMode=yes -o ControlMaster=no -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


class Runner(AnsibleStepRunner):
    """The bench's runner: the hash algorithm of the run; the cutover runs one stop command on the
    source (`true`: the bench's source has no service) so the stop is in the window as on a real host."""

    def extravars(self):
        return {**super().extravars(), "cutover_host_stop_commands": ["true"]}


def make_runner(work: str, hosts: list, key: str, tag: str, algorithm: str = "") -> AnsibleStepRunner:
    survey = survey_from_dicts(sshhosts.survey_rows(hosts, {}, "bench", "telecom"))
    plan = build_plan(survey, WaveOptions(max_hosts_per_wave=len(hosts), max_hosts_per_conversion_host=len(hosts)),
                      dt.datetime(2026, 11, 23, 9, 0))
    r = Runner(os.path.join(work, tag), plan, os.devnull, key, source_python="/usr/bin/python3", hash_algorithm=algorithm)
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


def window(events: list[dict], first_task: str, stopped_at: float | None = None) -> float:
    """Start of ``first_task`` (or ``stopped_at``: the moment the cutover's tool ran the stop
    commands, epoch seconds) to the end of the last "Record step done" (seconds), from the job events."""
    if stopped_at is not None:
        start = dt.datetime.fromtimestamp(stopped_at, dt.timezone.utc)
    else:
        start = min(dt.datetime.fromisoformat(e["created"]) for e in events
                    if e.get("event") == "playbook_on_task_start" and e["event_data"].get("task") == first_task)
    end = max(dt.datetime.fromisoformat(e["event_data"]["end"]) for e in events
              if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Record step done")
    return (end - start).total_seconds()


WINDOW_STARTS = {"sync_data": SYNC_TASK}


def stopped_at(runner: AnsibleStepRunner, host: str) -> float:
    with open(os.path.join(runner.records_dir, host, "cutover.json")) as fh:
        return float(json.load(fh)["stopped_at"])


def run_job(runner: AnsibleStepRunner, playbook: str, role: str, host: str) -> tuple[float, float]:
    """(job wall seconds with ansible-playbook's start-up, window seconds)"""
    ident = f"bench-{playbook}-{time.time_ns()}"
    t0 = time.perf_counter()
    _, done, failures = runner.run_playbook(playbook, role, (host,), ident)
    wall = time.perf_counter() - t0
    if host not in done:
        raise SystemExit(f"{playbook} failed: {failures}")
    if role == "cutover_host":
        return wall, window(job_events(runner, ident), "", stopped_at(runner, host))
    return wall, window(job_events(runner, ident), WINDOW_STARTS[role])


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


def ssh_cmd(host, key: str, extra: str = "") -> str:
    return f"ssh -p {host.port} -i {key} {SSH_OPTS} {extra}".strip()


def timed(argv: list[str], **kw) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, **kw)
    return time.perf_counter() - t0


def plain_rsync_seconds(host, key: str, dest: str) -> float:
    """Baseline: what an engineer types (OpenSSH's default cipher), into an empty directory."""
    shutil.rmtree(dest, ignore_errors=True)
    return timed(["rsync", "-a", "--rsh", ssh_cmd(host, key), f"root@{host.address}:/srv/app/data",
                  f"root@{host.address}:/srv/app/conf", dest + "/"])


def copy_floor_seconds(host, key: str, dest: str) -> float:
    """sync_data's rsync command alone (its options and cipher order), into an empty directory."""
    shutil.rmtree(dest, ignore_errors=True)
    return timed(["rsync", "--archive", "--relative", "--delete", "--numeric-ids", "--out-format=%i %l %n", "--mkpath",
                  "--rsh=" + ssh_cmd(host, key, GCM), f"root@{host.address}:/srv/app/data/",
                  f"root@{host.address}:/srv/app/conf/", dest + "/"])


def hash_floor_seconds(host, key: str, copy: str, algorithm: str) -> float:
    """Both sides hashed at once, no copy: the source over ssh, the copy here (verified_sync side)."""
    with open(SCRIPT, "rb") as fh:
        b64 = base64.b64encode(fh.read()).decode()
    side = ["side", "--algorithm", algorithm, "--", "srv/app/data", "srv/app/conf"]
    remote = " ".join(shlex.quote(a) for a in ["/usr/bin/python3", "-c", BOOT, b64, *side])
    t0 = time.perf_counter()
    src = subprocess.Popen(shlex.split(ssh_cmd(host, key)) + [f"root@{host.address}", remote], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dst = subprocess.Popen(["/usr/bin/python3", SCRIPT, "side", "--root", copy, *side[1:]], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    (a, ea), (b, eb) = src.communicate(b"\n"), dst.communicate(b"\n")
    seconds = time.perf_counter() - t0
    if src.returncode or dst.returncode:
        raise SystemExit(f"bench: hash floor failed: {ea.decode()[-300:]} {eb.decode()[-300:]}")
    if [json.loads(x)[:2] for x in a.splitlines()] != [json.loads(x)[:2] for x in b.splitlines()]:
        raise SystemExit("bench: the copy floor's copy differs from the source")
    return seconds


def rewrite(host, files: list[str], pct: int, rnd) -> int:
    """Rewrite pct % of the data files (at least one) with new content; returns bytes changed."""
    n = max(1, round(len(files) * pct / 100)) if pct else 0
    changed = 0
    for p in rnd.sample(files, n):
        size = os.path.getsize(p)
        with open(p, "r+b") as fh:
            fh.write(rnd.randbytes(size))
        changed += size
    return changed


def stub_cloud_records(runner: AnsibleStepRunner, host: str) -> None:
    """What import/boot/verify would have recorded on a cloud (the bench has none)."""
    d = os.path.join(runner.records_dir, host)
    os.makedirs(d, exist_ok=True)
    write_json_atomic(os.path.join(d, "boot.json"), {"server_id": "bench", "volume_id": "bench"})
    write_json_atomic(os.path.join(d, "verify.json"), {"ok": True, "data_checksums_match": True, "failed": []})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=8, help="hosts of the wave (with --wave)")
    ap.add_argument("--data-mb", type=int, default=1024, help="data on the host, MiB (default 1024)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--algorithm", default="sha256", choices=("sha256", "sm3"))
    ap.add_argument("--wave", action="store_true", help="also the orchestration overhead and a wave of --hosts hosts")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the medians")
    args = ap.parse_args()
    missing = sshhosts.missing_tools()
    if missing:
        raise SystemExit(f"bench/migration.py needs {', '.join(missing)} (run `make system-deps`)")
    work = tempfile.mkdtemp(prefix="ys-bench-mig-")
    key = sshhosts.make_key(os.path.join(work, "keys"))
    hosts = []
    load0 = os.getloadavg()
    t_start = dt.datetime.now(dt.timezone.utc)
    rnd = random.Random(0)
    try:
        big = sshhosts.start_host("tp1", 20, os.path.join(work, "hosts"), key)
        hosts.append(big)
        sshhosts.seed_host(big, data_files=max(1, args.data_mb // 4), file_bytes=4 * 1024 * 1024, disk_mb=16)
        files = sorted(glob.glob(os.path.join(big.root, "app", "data", "f*.bin")))
        data_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(big.root, "app", "**", "*"), recursive=True)
                         if os.path.isfile(p))
        time.sleep(1.1)                 # the data is older than sync_data_racy_seconds, as a real host's is
        m: dict[str, list[float]] = {k: [] for k in ("plain", "copy", "hash", "sync", "sync_job", "sync_work",
                                                     "cut0", "cut1", "cut10", "cut_job0", "cut_work0", "cut_work1",
                                                     "cut_work10")}
        changed_mb = {}
        copy = os.path.join(work, "plain")
        for i in range(args.rounds):
            # alternate the order of baseline/floors and ours between rounds, against drift
            def floors() -> None:
                m["plain"].append(plain_rsync_seconds(big, key, copy))
                m["copy"].append(copy_floor_seconds(big, key, copy))
                m["hash"].append(hash_floor_seconds(big, key, copy, args.algorithm))
            if i % 2 == 0:
                floors()
            r = make_runner(work, [big], key, f"r{i}", args.algorithm)     # fresh staging: a full copy
            run_step(r, "discover_hosts.yml", "discover_hosts", (big.name,))
            wall, win = run_job(r, "sync_data.yml", "sync_data", big.name)
            m["sync_job"].append(wall)
            m["sync"].append(win)
            with open(os.path.join(r.records_dir, big.name, "sync.json")) as fh:
                m["sync_work"].append(json.load(fh)["seconds"]["total"])
            if i % 2 == 1:
                floors()
            shutil.rmtree(copy, ignore_errors=True)
            stub_cloud_records(r, big.name)
            for pct in (0, 1, 10):
                changed_mb[pct] = rewrite(big, files, pct, rnd) / 2**20
                if pct:
                    time.sleep(1.1)      # changed files are older than the racy window, like a quiet service's
                wall, win = run_job(r, "cutover_host.yml", "cutover_host", big.name)
                m[f"cut{pct}"].append(win)
                if pct == 0:
                    m["cut_job0"].append(wall)
                with open(os.path.join(r.records_dir, big.name, "cutover-sync.json")) as fh:
                    rec = json.load(fh)
                m[f"cut_work{pct}"].append(rec["seconds"]["window"])
                for k in ("open", "stop", "rsync", "copy_after_rsync", "source_wait"):
                    m.setdefault(f"cut_{k}{pct}", []).append(rec["seconds"].get(k, 0.0))
                if rec["hashed"]["source"] != (max(1, round(len(files) * pct / 100)) if pct else 0):
                    print(f"note: round {i + 1}, {pct} %: the cutover re-hashed {rec['hashed']} files", file=sys.stderr)
            shutil.rmtree(r.state_dir, ignore_errors=True)
        med = {k: statistics.median(v) for k, v in m.items()}
        mib = data_bytes / 2**20
        print(f"\n## 1. verified sync and cutover window, {mib:.0f} MiB in {len(files) + 4} files, {args.algorithm}, "
              f"median of {args.rounds} rounds")
        print("| path | seconds | MiB/s | vs plain rsync |\n|---|---|---|---|")
        for label, k in (("plain `rsync -a` over ssh (baseline)", "plain"),
                         ("floor: sync_data's rsync command alone (copy)", "copy"),
                         ("floor: both sides hashed at once, no copy (hash)", "hash"),
                         ("verified warm sync: copy + both sides hashed + manifest (its own run time)", "sync_work"),
                         ("verified warm sync: task + record (the window, Ansible's per-task cost included)", "sync"),
                         ("verified warm sync: whole job with ansible-playbook's start-up", "sync_job")):
            print(f"| {label} | {med[k]:.2f} | {mib / med[k]:.0f} | {med[k] / med['plain']:.2f}x |")
        print("\n| cutover (final sync + verification + record) | changed | window s | its own run time s | "
              "window / verified sync |\n|---|---|---|---|---|")
        for pct in (0, 1, 10):
            print(f"| {pct} % of the files rewritten | {changed_mb[pct]:.0f} MiB | {med[f'cut{pct}']:.2f} | "
                  f"{med[f'cut_work{pct}']:.2f} | {med[f'cut{pct}'] / med['sync']:.3f} |")
        print(f"| (0 %, whole job with ansible-playbook's start-up) | | {med['cut_job0']:.2f} | | |")
        print("\n| cutover breakdown (medians, s) | before the stop: sessions open | stop commands | rsync | "
              "copy's pass after rsync | source's result after rsync | the tool's window | Ansible's share "
              "(task return + record) |\n|---|---|---|---|---|---|---|---|")
        for pct in (0, 1, 10):
            print(f"| {pct} % | {med[f'cut_open{pct}']:.3f} | {med[f'cut_stop{pct}']:.3f} | {med[f'cut_rsync{pct}']:.3f} | "
                  f"{med[f'cut_copy_after_rsync{pct}']:.3f} | {med[f'cut_source_wait{pct}']:.3f} | "
                  f"{med[f'cut_work{pct}']:.3f} | {med[f'cut{pct}'] - med[f'cut_work{pct}']:.3f} |")
        load1 = os.getloadavg()
        print(f"\nmachine: {os.cpu_count()} cores; run {t_start:%Y-%m-%d %H:%M}-{dt.datetime.now(dt.timezone.utc):%H:%M} UTC; "
              f"load average (1 min) {load0[0]:.1f} at the start, {load1[0]:.1f} at the end")
        result = {"data_mb": round(mib), "rsync_seconds": round(med["plain"], 3),
                  "verified_sync_seconds": round(med["sync"], 3),
                  "cutover_seconds": {str(p): round(med[f"cut{p}"], 3) for p in (0, 1, 10)},
                  "rounds": args.rounds, "algorithm": args.algorithm,
                  "load_average": [round(load0[0], 1), round(load1[0], 1)]}

        # ---- 2 + 3. a wave of N small hosts: all at once vs one at a time
        if not args.wave:
            if args.json:
                print(json.dumps(result))
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
        print("\n## 2. orchestration overhead per host per step (seconds; step wall time minus its work commands)")
        print("| step | one host alone | per host in a wave of %d |\n|---|---|---|" % len(wave))
        for _, role in steps:
            print(f"| {role} | {statistics.median(seq_overhead[role]):.2f} | {overhead[role]:.2f} |")
        print(f"\n## 3. a wave of {len(wave)} hosts (discover + sync + convert)")
        print("| mode | seconds | speed-up |\n|---|---|---|")
        print(f"| one host at a time (baseline) | {seq_wall:.1f} | 1.00x |")
        print(f"| whole wave in parallel (forks={len(wave)}) | {par_wall:.1f} | {seq_wall / par_wall:.2f}x |")
        print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
        if args.json:
            print(json.dumps(result))
    finally:
        for h in hosts:
            h.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
