"""Benchmark: ``yunshang plan`` end to end on a catalog of 1,000 department files (10,000 requests).

Generates the catalog as YAML files (the prefecture of ``bench/placement.py``: 3 operators,
5 templates, 1,000 departments x 10 requests), then times, best of a few runs each:

  * ``yunshang plan --catalog DIR`` as a subprocess, end to end (interpreter start, imports,
    reading every file, validation, placement, the table), and the same with ``--output json``;
  * the same command with the YAML loader switched to PyYAML's pure-Python ``SafeLoader``
    (the baseline: what the loader was before libyaml), in the same run;
  * reading the files alone, both ways (in-process).

Printed: wall and CPU seconds (user+system, the measure a shared machine's load does not
inflate) and the ratio baseline / ours. Goal: the end-to-end plan under 1 s.

    .venv/bin/python bench/plan_load.py             # 1,000 departments
    .venv/bin/python bench/plan_load.py --departments 200
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.placement import DAY, generate  # noqa: E402

PURE_PLAN = ("import sys, yaml, yunshang.yamlload as y; y._Loader = yaml.SafeLoader; "
             "from cli.main import main; sys.argv[0] = 'yunshang'; main()")


def write_catalog(n: int, dest: Path) -> int:
    """Write the generated prefecture of ``n`` departments as a catalog directory; returns #requests."""
    cat = generate(n)
    (dest / "departments").mkdir(parents=True)
    (dest / "templates").mkdir()
    providers = [{
        "name": p.name, "cloud": p.cloud, "dedicated": p.dedicated, "mlps_level": p.mlps_level,
        "sla": {"availability": p.sla.availability, "rto_minutes": p.sla.rto_minutes,
                "rpo_minutes": p.sla.rpo_minutes},
        "prices": {"vcpu": p.prices.vcpu, "ram_gb": p.prices.ram_gb, "disk_gb": p.prices.disk_gb,
                   "floating_ip": p.prices.floating_ip},
        "zones": [{"name": z.name, "vcpu": z.vcpu, "ram_gb": z.ram_gb, "disk_gb": z.disk_gb,
                   "overcommit": {"vcpu": z.overcommit.vcpu, "ram_gb": z.overcommit.ram_gb,
                                  "disk_gb": z.overcommit.disk_gb}} for z in p.zones],
    } for p in cat.providers]
    (dest / "providers.yaml").write_text(yaml.safe_dump({"providers": providers}, sort_keys=False))
    for t in cat.templates.values():
        doc = {"name": t.name, "floating_ips": t.floating_ips,
               "sizes": {k: {"vcpu": s.vcpu, "ram_gb": s.ram_gb, "disk_gb": s.disk_gb} for k, s in t.sizes.items()},
               "user_data": "#cloud-config\nhostname: {{ instance }}\n"}
        (dest / "templates" / f"{t.name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    n_req = 0
    for d in cat.departments:
        doc = {"name": d.name, "display_name": d.display_name, "mlps_level": d.mlps_level,
               "contracts": [{"id": c.id, "provider": c.provider, "role": c.role, "start": c.start, "end": c.end,
                              "ceiling_cny_per_month": c.ceiling_cny_per_month} for c in d.contracts],
               "requests": [{"name": r.name, "template": r.template, "size": r.size, "count": r.count,
                             "mlps_level": r.mlps_level, "ha": r.ha, "dr": r.dr, "secret": r.secret}
                            for r in d.requests]}
        n_req += len(d.requests)
        (dest / "departments" / f"{d.name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return n_req


def best(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of ``repeats`` runs; CPU counts this process and the
    children it waited for (user + system), which a shared machine's load does not inflate."""
    walls, cpus = [], []
    for _ in range(repeats):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(sum(getattr(b, f) - getattr(a, f) for a, b in ((r0, r1), (c0, c1))
                        for f in ("ru_utime", "ru_stime")))
    return min(walls), min(cpus)


def run_plan(argv: list[str]) -> None:
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    if r.returncode not in (0, 3):      # 3: some requests could not be placed (an outcome, not a failure)
        raise SystemExit(f"plan failed ({r.returncode}): {r.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--departments", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from yunshang.yamlload import read_yaml

    with tempfile.TemporaryDirectory(prefix="yunshang-bench-plan-") as tmp:
        cat = Path(tmp) / "catalog"
        n_req = write_catalog(args.departments, cat)
        files = sorted(cat.rglob("*.yaml"))
        day = DAY.isoformat() if isinstance(DAY, dt.date) else str(DAY)
        plan_args = ["plan", "--catalog", str(cat), "--date", day]          # the default output: the table
        exe = str(Path(sys.executable).with_name("yunshang"))

        ours_load = best(lambda: [read_yaml(f) for f in files], args.repeats)
        pure_load = best(lambda: [yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.SafeLoader) for f in files],
                         args.repeats)
        ours = best(lambda: run_plan([exe, *plan_args]), args.repeats)
        pure = best(lambda: run_plan([sys.executable, "-c", PURE_PLAN, *plan_args]), args.repeats)
        as_json = best(lambda: run_plan([exe, *plan_args, "--output", "json"]), args.repeats)

    load = os.getloadavg()[0]
    print(f"catalog: {args.departments} department files, {n_req} requests, {len(files)} YAML files; "
          f"best of {args.repeats}; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':34}{'ours (libyaml)':>16}{'pure-Python':>14}{'ratio':>8}")
    for label, o, p in (("read every YAML file (wall)", ours_load[0], pure_load[0]),
                        ("read every YAML file (CPU)", ours_load[1], pure_load[1]),
                        ("yunshang plan, end to end (wall)", ours[0], pure[0]),
                        ("yunshang plan, end to end (CPU)", ours[1], pure[1])):
        print(f"{label:34}{o:>15.3f}s{p:>13.3f}s{p / o:>7.1f}x")
    print(f"{'  the same with --output json':34}{as_json[0]:>15.3f}s (wall), {as_json[1]:.3f}s (CPU)")
    print(f"goal: plan end to end under 1 s -> CPU {ours[1]:.3f} s: {'met' if ours[1] < 1.0 else 'NOT met'}; "
          f"wall {ours[0]:.3f} s: {'met' if ours[0] < 1.0 else 'not met'} (at load average {load:.1f} on "
          f"{os.cpu_count()} CPUs wall time includes waiting for a CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
