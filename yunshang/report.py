"""The monthly report a higher authority asks for, per site and tier (pure; issue 13).

Per site of the tree (each row is the site AND every site below it) and per tier:

* capacity and its use: schedulable capacity (catalog size x overcommit) of the zones at the
  site and below, and what the configured requests held there over the month -- peak and
  time-weighted mean of vCPU, RAM and disk (from the lifecycle store's holdings, the same rows
  ``bill`` charges);
* spend: what ``bill`` charges the departments at the site and below (per department and per
  operator), against the site's budget; and what ``plan`` places for them per month (the rate
  rule 7 bounds);
* SLA per contract (the bill's evidence), MLPS compliance status per department (from the
  evidence ``compliance check --out`` writes, else "unchecked"; the plan's operators checked
  against the department's level either way), migration progress (hosts surveyed / migrated /
  cut over, from a migration's state).

``build_report`` returns plain JSON-able data; ``report_html`` renders it as one self-contained
page with inline SVG charts (no script, no fetch). Money is summed in fen (integers) so that the
report's totals equal the bill's to the fen.
"""
from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from yunshang import billing as b
from yunshang.model import RESOURCES, Catalog, Plan
from yunshang.sites import SiteTree


@dataclass(frozen=True)
class MigrationHost:
    """One surveyed host of a migration: whose it is and how far it got."""

    host: str
    department: str
    status: str            # pending | in-progress | failed | migrated | rolled-back
    cut_over: bool


def _use(intervals: list[tuple[dt.datetime, dt.datetime, tuple[float, float, float]]],
         start: dt.datetime, end: dt.datetime) -> tuple[list[float], list[float]]:
    """(peak, time-weighted mean) per resource of the summed holdings over [start, end)."""
    events: dict[dt.datetime, list[float]] = {}
    for s, e, amount in intervals:
        s, e = max(s, start), min(e, end)
        if e <= s:
            continue
        for t, sign in ((s, 1.0), (e, -1.0)):
            ev = events.setdefault(t, [0.0, 0.0, 0.0])
            for r in range(3):
                ev[r] += sign * amount[r]
    level, peak, area = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    prev = start
    for t in sorted(events):
        for r in range(3):
            area[r] += level[r] * (t - prev).total_seconds()
            level[r] += events[t][r]
            peak[r] = max(peak[r], level[r])
        prev = t
    span = (end - start).total_seconds()
    mean = [round(a / span, 3) if span > 0 else 0.0 for a in area]
    return [round(p, 3) for p in peak], mean


def build_report(catalog: Catalog, month: str, bills: Sequence[b.DepartmentBill], held: Iterable[b.HeldResource],
                 plan: Plan, *, to: dt.datetime, site: str = "", compliance: Mapping[str, dict] | None = None,
                 migration: Sequence[MigrationHost] = (), projected: bool = False) -> dict:
    """The report for ``site`` and every site below it (default: the whole tree)."""
    tree = SiteTree(catalog.sites)
    top = tree.resolve(site)
    start, month_end = b.parse_month(month)
    to = min(max(to, start), month_end)
    dept_site = {d.name: tree.resolve(d.site) for d in catalog.departments}
    zone_site = {(p.name, z.name): tree.resolve(z.site) for p in catalog.providers for z in p.zones}
    in_scope = set(tree.subtree(top))
    bill_of = {x.department: x for x in bills}
    compliance = compliance or {}

    # what each department is placed for (plan), and whether its operators are certified for it
    planned: dict[str, int] = {}
    certified: dict[str, bool] = {}
    levels = {d.name: max([d.mlps_level] + [r.mlps_level for r in d.requests]) for d in catalog.departments}
    mlps = {p.name: p.mlps_level for p in catalog.providers}
    for p in plan.placements:
        planned[p.department] = planned.get(p.department, 0) + b._fen(p.monthly_cost_cny)
        certified[p.department] = certified.get(p.department, True) and mlps[p.provider] >= levels[p.department]
    unplaced: dict[str, int] = {}
    for u in plan.unplaced:
        unplaced[u.department] = unplaced.get(u.department, 0) + 1

    mig: dict[str, dict[str, int]] = {}
    for h in migration:
        m = mig.setdefault(h.department, {"surveyed": 0, "migrated": 0, "cut_over": 0, "failed": 0})
        m["surveyed"] += 1
        m["migrated"] += h.status == "migrated" or h.cut_over
        m["cut_over"] += h.cut_over
        m["failed"] += h.status == "failed"

    departments: list[dict[str, Any]] = []
    for d in catalog.departments:
        if dept_site[d.name] not in in_scope:
            continue
        bl = bill_of.get(d.name)
        contracts = []
        by_op: dict[str, int] = {}
        for c in (bl.contracts if bl else ()):
            by_op[c.operator] = by_op.get(c.operator, 0) + c.net_fen
            contracts.append({
                "contract": c.contract, "operator": c.operator, "role": c.role, "net_cny": c.net_cny,
                "gross_cny": c.gross_cny, "credit_cny": c.credit_cny, "ceiling_cny": c.ceiling_cny,
                "availability_ratio": c.sla.availability_ratio, "target_ratio": c.sla.target_ratio,
                "sla_breached": b.sla_breached(c.sla), "has_sla_data": c.sla.has_data})
        ev = compliance.get(d.name)
        departments.append({
            "department": d.name, "display_name": d.display_name, "site": dept_site[d.name],
            "tier": tree.tier(d.site), "mlps_level": levels[d.name],
            "net_cny": (bl.net_fen if bl else 0) / 100, "by_operator": {k: v / 100 for k, v in sorted(by_op.items())},
            "planned_monthly_cny": planned.get(d.name, 0) / 100, "unplaced_roles": unplaced.get(d.name, 0),
            "contracts": contracts,
            "compliance": {"status": ("compliant" if ev["compliant"] else "not-compliant") if ev else "unchecked",
                           "checked_at": ev.get("checked_at", "") if ev else "",
                           "operators_certified": certified.get(d.name, True)},
            "migration": mig.get(d.name, {"surveyed": 0, "migrated": 0, "cut_over": 0, "failed": 0}),
        })
    by_name = {x["department"]: x for x in departments}

    # holdings per zone (clipped to the period); the sweep sums them per subtree
    intervals: dict[str, list] = {}
    for hold in held:
        where = zone_site.get((hold.operator, hold.zone))
        if where is None:
            continue
        intervals.setdefault(where, []).append((hold.start, hold.end or to, (hold.vcpu, hold.ram_gb, hold.disk_gb)))

    sites = []
    for s in tree.ordered():
        if s.name not in in_scope:
            continue
        below = set(tree.subtree(s.name))
        cap = [0.0, 0.0, 0.0]
        for prov in catalog.providers:
            for z in prov.zones:
                if tree.resolve(z.site) in below:
                    for r, res in enumerate(RESOURCES):
                        cap[r] += z.capacity(res)
        peak, mean = _use([iv for n in below for iv in intervals.get(n, [])], start, to)
        ds = [x for x in departments if x["site"] in below]
        net_fen = sum(bill_of[x["department"]].net_fen for x in ds if x["department"] in bill_of)
        gross_fen = sum(c.gross_fen for x in ds if x["department"] in bill_of for c in bill_of[x["department"]].contracts)
        ops: dict[str, int] = {}
        for x in ds:
            for c in (bill_of[x["department"]].contracts if x["department"] in bill_of else ()):
                ops[c.operator] = ops.get(c.operator, 0) + c.net_fen
        plan_fen = sum(planned.get(x["department"], 0) for x in ds)
        contracts = [c for x in ds for c in x["contracts"]]
        budget = s.budget_cny_per_month
        sites.append({
            "site": s.name, "display_name": s.display_name or s.name, "tier": s.tier, "parent": s.parent,
            "depth": len(tree.chain(s.name)) - 1, "departments": [x["department"] for x in ds],
            "capacity": {res: {"capacity": round(cap[r], 3), "peak": peak[r], "mean": mean[r],
                               "peak_ratio": round(peak[r] / cap[r], 4) if cap[r] else None,
                               "mean_ratio": round(mean[r] / cap[r], 4) if cap[r] else None}
                         for r, res in enumerate(RESOURCES)},
            "spend": {"net_cny": net_fen / 100, "gross_cny": gross_fen / 100, "credit_cny": (gross_fen - net_fen) / 100,
                      "by_operator": {k: v / 100 for k, v in sorted(ops.items())},
                      "by_department": {x["department"]: x["net_cny"] for x in ds},
                      "planned_monthly_cny": plan_fen / 100, "budget_cny_per_month": budget,
                      "budget_used_ratio": round(net_fen / 100 / budget, 4) if budget else None,
                      "planned_budget_ratio": round(plan_fen / 100 / budget, 4) if budget else None},
            "sla": {"contracts": len(contracts), "with_data": sum(1 for c in contracts if c["has_sla_data"]),
                    "breached": sum(1 for c in contracts if c["sla_breached"])},
            "compliance": {k: sum(1 for x in ds if x["compliance"]["status"] == k)
                           for k in ("compliant", "not-compliant", "unchecked")}
            | {"operators_not_certified": sum(1 for x in ds if not x["compliance"]["operators_certified"])},
            "migration": {k: sum(by_name[x["department"]]["migration"][k] for x in ds)
                          for k in ("surveyed", "migrated", "cut_over", "failed")},
        })
    tiers = []
    for t in dict.fromkeys(x["tier"] for x in sites):
        own = [x for x in sites if x["tier"] == t]
        here = [x for x in departments if x["tier"] == t]
        tiers.append({"tier": t, "sites": [x["site"] for x in own],
                      "departments": len(here),
                      "net_cny": sum(b._fen(x["net_cny"]) for x in here) / 100,
                      "planned_monthly_cny": sum(b._fen(x["planned_monthly_cny"]) for x in here) / 100})
    return {"month": month, "to": to.isoformat(), "projected": projected, "site": top,
            "plan_date": plan.date.isoformat(), "sites": sites, "tiers": tiers, "departments": departments}


# --------------------------------------------------------------------------- HTML
def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _bars(title: str, rows: Sequence[tuple[str, float, float | None]], unit: str, width: int = 760) -> str:
    """Horizontal bars: value per row, with a marker at the limit (budget, capacity) when given."""
    h_row, pad_l, pad_r = 22, 190, 90
    top = max([v for _, v, _ in rows] + [lim for _, _, lim in rows if lim] + [1e-9])
    height = h_row * len(rows) + 30
    plot = width - pad_l - pad_r
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
           f'<text x="4" y="14" font-size="12" font-weight="bold" fill="#1a202c">{_e(title)}</text>']
    for i, (label, v, lim) in enumerate(rows):
        y = 24 + i * h_row
        w = plot * v / top
        over = lim is not None and v > lim
        out.append(f'<text x="{pad_l - 6}" y="{y + 14}" font-size="11" text-anchor="end" fill="#2d3748">{_e(label)}</text>')
        out.append(f'<rect x="{pad_l}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{h_row - 8}" '
                   f'fill="{"#c53030" if over else "#2b6cb0"}"><title>{_e(label)}: {v:,.2f} {_e(unit)}</title></rect>')
        if lim:
            x = pad_l + plot * lim / top
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + h_row - 2}" stroke="#1a202c" '
                       f'stroke-width="2"><title>limit {lim:,.2f} {_e(unit)}</title></line>')
        out.append(f'<text x="{pad_l + w + 4:.1f}" y="{y + 14}" font-size="10" fill="#4a5568">{v:,.2f}</text>')
    out.append("</svg>")
    return "".join(out)


def _pct(r: float | None) -> str:
    return "–" if r is None else f"{r * 100:.1f}%"


def report_html(report: dict, issued: dt.datetime) -> str:
    """One self-contained page (inline CSS and SVG; CSP default-src 'none')."""
    sites = report["sites"]
    ind = lambda s: "　" * s["depth"] + s["display_name"] + f" ({s['site']})"  # noqa: E731
    spend = _bars("Spend this month (CNY, the site and below) vs budget",
                  [(ind(s), s["spend"]["net_cny"], s["spend"]["budget_cny_per_month"]) for s in sites], "CNY")
    plan = _bars("Placed per month (CNY, plan) vs budget",
                 [(ind(s), s["spend"]["planned_monthly_cny"], s["spend"]["budget_cny_per_month"]) for s in sites], "CNY")
    cap = _bars("vCPU held: peak (bar) and capacity (marker)",
                [(ind(s), s["capacity"]["vcpu"]["peak"], s["capacity"]["vcpu"]["capacity"] or None) for s in sites],
                "vCPU")
    contracts = [(f"{d['department']} {c['contract']}", (c["availability_ratio"] or 0.0) * 100, c["target_ratio"] * 100)
                 for d in report["departments"] for c in d["contracts"] if c["availability_ratio"] is not None]
    sla = _bars("SLA availability this month (%) vs target (marker)", contracts, "%") if contracts else \
        '<p class="muted">No SLA evidence for this month (no Prometheus given, or no probe samples).</p>'
    rows = []
    for s in sites:
        c, sp, m, comp = s["capacity"], s["spend"], s["migration"], s["compliance"]
        budget = "–" if sp["budget_cny_per_month"] is None else f"{sp['budget_cny_per_month']:,.0f}"
        rows.append(
            f"<tr><td>{'&nbsp;' * 4 * s['depth']}{_e(s['display_name'])} <code>{_e(s['site'])}</code></td>"
            f"<td>{_e(s['tier'])}</td>"
            + "".join(f"<td>{_pct(c[r]['peak_ratio'])} / {_pct(c[r]['mean_ratio'])}</td>" for r in RESOURCES)
            + f"<td>{sp['net_cny']:,.2f}</td><td>{sp['planned_monthly_cny']:,.2f}</td>"
            f"<td>{budget}</td>"
            f"<td>{s['sla']['breached']} of {s['sla']['contracts']}</td>"
            f"<td>{comp['compliant']} ok, {comp['not-compliant']} not, {comp['unchecked']} unchecked</td>"
            f"<td>{m['surveyed']} / {m['migrated']} / {m['cut_over']}</td></tr>")
    drows = []
    for d in report["departments"]:
        ops = ", ".join(f"{k} {v:,.2f}" for k, v in d["by_operator"].items()) or "–"
        drows.append(f"<tr><td>{_e(d['display_name'])} <code>{_e(d['department'])}</code></td><td>{_e(d['site'])}</td>"
                     f"<td>{d['net_cny']:,.2f}</td><td>{_e(ops)}</td><td>{d['planned_monthly_cny']:,.2f}</td>"
                     f"<td>{_e(d['compliance']['status'])}</td></tr>")
    title = f"Monthly report {report['month']} — {report['site']}"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{_e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #1a202c; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.muted {{ color: #718096; }} code {{ color: #4a5568; }}
</style></head><body>
<h1>{_e(title)}</h1>
<p class="muted">Charges to {_e(report['to'])}{' (projected)' if report['projected'] else ''}; plan as of
{_e(report['plan_date'])}; issued {_e(issued.isoformat(timespec='seconds'))}. Each site row is the site and
every site below it.</p>
<h2>Sites</h2>
<table><tr><th>site</th><th>tier</th><th>vCPU peak / mean</th><th>RAM peak / mean</th><th>disk peak / mean</th>
<th>spend CNY</th><th>placed CNY/month</th><th>budget</th><th>SLA breached</th><th>MLPS</th>
<th>migration surveyed / migrated / cut over</th></tr>
{''.join(rows)}</table>
{spend}
{plan}
{cap}
{sla}
<h2>Departments</h2>
<table><tr><th>department</th><th>site</th><th>spend CNY</th><th>per operator</th><th>placed CNY/month</th><th>MLPS</th></tr>
{''.join(drows)}</table>
</body></html>
"""
