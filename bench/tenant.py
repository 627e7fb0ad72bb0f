"""Benchmark: deriving tenant specs and declaring them under Pulumi mocks, on the sample prefecture.

    .venv/bin/python bench/tenant.py [--catalog examples/prefecture] [--date 2026-12-01] [--repeat 3]

Prints, for the whole sample (every department x operator the plan places something on):
  * place()            the baseline: the placement every spec is derived from
  * tenant_specs()     all TenantSpecs (rules, CIDRs, baselines, Jinja2 user_data)
  * spec_inventory()   canonical (kind, name, key) inventories of all specs
  * declare (mocks)    the Pulumi program for every stack under pulumi.runtime.set_mocks
with ratios against place() in the same run, and resources declared per second.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=DeprecationWarning)


def best_seconds(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default=str(ROOT / "examples" / "prefecture"))
    ap.add_argument("--date", default="2026-12-01")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    from stacks.graph import declare_tenant
    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.tenant import spec_inventory, tenant_specs

    cat = load_catalog(a.catalog)
    day = dt.date.fromisoformat(a.date)
    t_place, plan = best_seconds(lambda: place(cat, day), a.repeat)
    t_specs, specs = best_seconds(lambda: tenant_specs(cat, plan), a.repeat)
    t_inv, invs = best_seconds(lambda: [spec_inventory(s) for s in specs], a.repeat)
    t_decl, graphs = best_seconds(lambda: [declare_tenant(s) for s in specs], 1)
    servers = sum(len(s.servers) for s in specs)
    items = sum(len(i) for i in invs)
    resources = sum(len(g.resources) for g in graphs)
    print(f"sample: {len(specs)} tenants, {servers} servers, {items} inventory items, {resources} declared resources")
    print(f"{'step':<22}{'seconds':>10}{'x place()':>12}")
    for name, t in (("place() [baseline]", t_place), ("tenant_specs()", t_specs), ("spec_inventory() all", t_inv),
                    ("declare under mocks", t_decl)):
        print(f"{name:<22}{t:>10.4f}{t / t_place:>12.2f}")
    print(f"declared resources per second under mocks: {resources / t_decl:.0f}")


if __name__ == "__main__":
    main()
