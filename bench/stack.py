"""The Pulumi engine against the devcloud, measured against the SDK engine in the same run.

  1. one 50-server tenant built and destroyed by `yunshang stack up|destroy` (Pulumi) and by
     `yunshang tenant apply|destroy` (openstacksdk), same spec: wall times and the ratio;
  2. `yunshang stack preview` of the largest sample tenant on a devcloud operator (no state yet);
  3. the engine build: warm (cached: relink only) always; cold (empty Go caches, every module
     downloaded and compiled) with --cold (15-30 min on 2 cores).

Needs a healthy devcloud (`yunshang devcloud up`) and `make pulumi`. Department `ypl-bench`
(no sample or test uses it). Both engines build from one recorded plan (`plan --save`, as the
center's engineer of the devcloud's Keystone) in the bench's own lifecycle store. Not part of
`make test`. Prints each figure and the ratio lines (Pulumi / SDK, same run).

  .venv/bin/python bench/stack.py [--servers 50] [--skip-tenant] [--cold] [--output json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
DAY = "2026-12-01"


STORE: dict[str, str] = {}       # the bench's own lifecycle store (set in main)


def yunshang(state: Path, *args: str, timeout: float = 3600) -> float:
    env = {**os.environ, "YUNSHANG_STATE_DIR": str(state), "PULUMI_CONFIG_PASSPHRASE": "ypl-bench", **STORE}
    env.pop("OS_CLOUD", None)
    t = time.monotonic()
    r = subprocess.run([str(BIN / "yunshang"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"yunshang {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return time.monotonic() - t


def bench_catalog(dst: Path, servers: int) -> Path:
    shutil.copytree(ROOT / "tests" / "stack" / "catalog", dst)
    for f in (dst / "departments").glob("*.yaml"):
        f.unlink()
    (dst / "departments" / "ypl-bench.yaml").write_text(
        "name: ypl-bench\ndisplay_name: 基准局\nmlps_level: 2\ncontracts:\n"
        "  - {id: YPLB-2026-01, provider: telecom, role: primary, start: 2026-01-01, end: 2028-12-31, "
        "ceiling_cny_per_month: 10000000}\n"
        f"requests:\n  - {{name: app, template: ypl-db, size: tiny, count: {servers}}}\n")
    return dst


def save_plan(state: Path, catalog: str, clouds: str, department: str) -> None:
    """Record the plan both engines build (``--plan`` default: the latest covering the department)."""
    yunshang(state, "plan", "--catalog", catalog, "--date", DAY, "--save", "--department", department,
             "--clouds", clouds, "--os-cloud", "person-center-engineer")


def _leave_nothing(clouds: str) -> None:
    """What an interrupted run left of ypl-bench on telecom (the SDK engine's destroy: by markers)."""
    from yunshang.openstack.tenant import destroy_tenant

    destroy_tenant("telecom", "telecom", "ypl-bench", clouds)


def tenant_ratio(clouds: str, servers: int, tmp: Path) -> dict:
    cat = str(bench_catalog(tmp / "catalog", servers))
    common = ["--catalog", cat, "--date", DAY, "--clouds", clouds, "--operator", "telecom"]
    out: dict = {"servers": servers}
    save_plan(tmp / "plan-state", cat, clouds, "ypl-bench")
    s = tmp / "pulumi-state"
    try:
        out["stack_up_s"] = round(yunshang(s, "stack", "up", "ypl-bench", *common), 1)
        out["stack_up_again_s"] = round(yunshang(s, "stack", "up", "ypl-bench", *common), 1)
    finally:
        out["stack_destroy_s"] = round(yunshang(s, "stack", "destroy", "ypl-bench", "--yes", *common), 1)
    s = tmp / "sdk-state"
    try:
        out["sdk_apply_s"] = round(yunshang(s, "tenant", "apply", "ypl-bench", *common), 1)
        out["sdk_apply_again_s"] = round(yunshang(s, "tenant", "apply", "ypl-bench", *common), 1)
    finally:
        out["sdk_destroy_s"] = round(yunshang(s, "tenant", "destroy", "ypl-bench", "--catalog", cat, "--clouds",
                                              clouds, "--operator", "telecom", "--yes"), 1)
    out["up_ratio"] = round(out["stack_up_s"] / out["sdk_apply_s"], 2)
    out["up_again_ratio"] = round(out["stack_up_again_s"] / out["sdk_apply_again_s"], 2)
    out["destroy_ratio"] = round(out["stack_destroy_s"] / out["sdk_destroy_s"], 2)
    return out


def largest_preview(clouds: str, operators: list[str], tmp: Path) -> dict:
    import datetime as dt

    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.tenant import operators_of, tenant_spec

    cat = load_catalog(ROOT / "examples" / "prefecture")
    plan = place(cat, dt.date.fromisoformat(DAY))
    best = None
    for d in cat.departments:
        for op in operators_of(cat, plan, d.name):
            if cat.provider(op).cloud in operators:
                n = len(tenant_spec(cat, plan, d.name, op).servers)
                best = max(best or (0, "", ""), (n, d.name, op))
    if best is None:
        return {"skipped": "no sample tenant on a devcloud operator"}
    n, dept, op = best
    sample = str(ROOT / "examples" / "prefecture")
    save_plan(tmp / "plan-state", sample, clouds, dept)
    t = yunshang(tmp / "preview-state", "stack", "preview", dept, "--operator", op, "--catalog", sample,
                 "--date", DAY, "--clouds", clouds)
    return {"department": dept, "operator": op, "servers": n, "preview_s": round(t, 1)}


def engine_build(cold: bool, tmp: Path) -> dict:
    script = ROOT / "tools" / "pulumi" / "build.sh"
    t = time.monotonic()
    subprocess.run(["bash", str(script)], check=True, capture_output=True, env={**os.environ, "VENV": str(BIN.parent)})
    out = {"warm_s": round(time.monotonic() - t, 2)}
    if cold:
        c = tmp / "cold"
        env = {**os.environ, "VENV": str(c / "venv"), "YUNSHANG_PULUMI_CACHE": str(c / "cache"),
               "GOCACHE": str(c / "gocache"), "GOMODCACHE": str(c / "gomod")}
        t = time.monotonic()
        subprocess.run(["bash", str(script)], check=True, capture_output=True, env=env)
        out["cold_s"] = round(time.monotonic() - t, 1)
        du = subprocess.run(["du", "-sm", str(c / "cache"), str(c / "gocache"), str(c / "gomod")],
                            capture_output=True, text=True).stdout.split()
        out["cold_disk_mb"] = {Path(p).name: int(m) for m, p in zip(du[::2], du[1::2], strict=False)}
        subprocess.run(["go", "clean", "-modcache"], env=env, capture_output=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--skip-tenant", action="store_true", help="skip the 50-server up/apply comparison")
    ap.add_argument("--cold", action="store_true", help="also time a cold engine build (empty Go caches)")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    a = ap.parse_args()
    from yunshang.devcloud import Devcloud

    dc = Devcloud()
    if not dc.healthy():
        raise SystemExit("the devcloud is not healthy: yunshang devcloud up")
    clouds = str(dc.layout.clouds_file)
    ops = [o.name for o in dc.layout.operators]
    import datetime as dt

    res: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "load_average": [round(x, 1) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="ypl-bench-") as d:
        tmp = Path(d)
        STORE["YUNSHANG_DB"] = "sqlite:///" + str(tmp / "lifecycle.db")
        res["engine_build"] = engine_build(a.cold, tmp)
        res["largest_sample_preview"] = largest_preview(clouds, ops, tmp)
        if not a.skip_tenant:
            try:
                res["tenant"] = tenant_ratio(clouds, a.servers, tmp)
            except BaseException:
                _leave_nothing(clouds)
                raise
    res["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
    if a.output == "json":
        print(json.dumps(res, indent=2))
        return
    for k, v in res.items():
        print(f"{k}: {v}")
    t = res.get("tenant")
    if t:
        print(f"ratio stack up / tenant apply ({t['servers']} servers): {t['up_ratio']} "
              f"({t['stack_up_s']} s / {t['sdk_apply_s']} s)")
        print(f"ratio second stack up / second tenant apply (no changes): {t['up_again_ratio']} "
              f"({t['stack_up_again_s']} s / {t['sdk_apply_again_s']} s)")
        print(f"ratio stack destroy / tenant destroy: {t['destroy_ratio']} "
              f"({t['stack_destroy_s']} s / {t['sdk_destroy_s']} s)")


if __name__ == "__main__":
    main()
