"""The monthly statement as ONE self-contained HTML page per department (pure string building).

Inline CSS and inline SVG charts only: no script, no font, no image, no network
fetch (a Content-Security-Policy of ``default-src 'none'`` says so to the
browser as well). Written for a department head: totals first, then what each
contract cost per day, how much of its ceiling it used, the SLA it got, and
the detail lines last.
"""
from __future__ import annotations

import datetime as dt
import html
from typing import Sequence

from yunshang.billing import ContractBill, DepartmentBill
from yunshang.model import Catalog

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b")


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _cny(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def _pct(r: float, digits: int = 3) -> str:
    return f"{r * 100:.{digits}f}%"


def daily_cost_svg(contracts: Sequence[ContractBill], days: Sequence[str], width: int = 720, height: int = 220) -> str:
    """Stacked bars: cost per day, one colour per contract."""
    pad_l, pad_b, pad_t = 64, 28, 12
    per_day = {d: [dict(c.daily_fen).get(d, 0) for c in contracts] for d in days}
    top = max([sum(v) for v in per_day.values()] + [1])
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    bw = plot_w / max(len(days), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="Cost per day">']
    for i in range(5):
        v = top * i / 4
        y = pad_t + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#4a5568">'
                     f'{v / 100:,.0f}</text>')
    for i, d in enumerate(days):
        y = pad_t + plot_h
        for j, v in enumerate(per_day[d]):
            h = plot_h * v / top
            y -= h
            if h > 0:
                parts.append(f'<rect x="{pad_l + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" '
                             f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(d)} '
                             f'{_e(contracts[j].contract)}: {_cny(v)}</title></rect>')
        if i % 5 == 0 or i == len(days) - 1:
            parts.append(f'<text x="{pad_l + i * bw + bw / 2:.1f}" y="{height - 10}" font-size="10" '
                         f'text-anchor="middle" fill="#4a5568">{_e(d[8:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def ceiling_svg(contracts: Sequence[ContractBill], width: int = 720) -> str:
    """Horizontal bars: net cost / ceiling per contract (red past 100 %)."""
    row, pad_l = 30, 150
    height = row * len(contracts) + 24
    scale = max([1.0] + [c.ceiling_used_ratio for c in contracts])
    plot_w = width - pad_l - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="Share of contract ceiling used">']
    x100 = pad_l + plot_w / scale
    for i, c in enumerate(contracts):
        y = 8 + i * row
        w = plot_w * c.ceiling_used_ratio / scale
        colour = "#c53030" if c.over_ceiling else PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{pad_l - 8}" y="{y + 15}" font-size="12" text-anchor="end">{_e(c.contract)}</text>')
        parts.append(f'<rect x="{pad_l}" y="{y + 3}" width="{plot_w:.1f}" height="16" fill="#edf2f7"/>')
        parts.append(f'<rect x="{pad_l}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="16" fill="{colour}"/>')
        parts.append(f'<text x="{pad_l + plot_w + 6}" y="{y + 15}" font-size="12">'
                     f'{_pct(c.ceiling_used_ratio, 1)}</text>')
    parts.append(f'<line x1="{x100:.1f}" y1="4" x2="{x100:.1f}" y2="{height - 14}" stroke="#1a202c" '
                 f'stroke-dasharray="3 3"/><text x="{x100:.1f}" y="{height - 2}" font-size="10" '
                 f'text-anchor="middle">ceiling</text>')
    parts.append("</svg>")
    return "".join(parts)


def availability_svg(c: ContractBill, days: Sequence[str], width: int = 720, height: int = 160) -> str:
    """Daily availability (dots joined) against the target line; grey days = no probe data."""
    pad_l, pad_b, pad_t = 64, 24, 10
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    lo = min([c.sla.target_ratio - 0.002] + [v for _, v in c.sla.daily_availability if v is not None])
    lo = max(0.0, min(lo, 0.99))
    def y(v: float) -> float:
        return pad_t + plot_h * (1 - (v - lo) / (1 - lo))
    step = plot_w / max(len(days) - 1, 1)
    idx = {d: i for i, d in enumerate(days)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="Daily availability of {_e(c.contract)}">']
    for v in (lo, (lo + 1) / 2, 1.0):
        parts.append(f'<line x1="{pad_l}" y1="{y(v):.1f}" x2="{width - 8}" y2="{y(v):.1f}" stroke="#e2e8f0"/>'
                     f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{_pct(v, 2)}</text>')
    parts.append(f'<line x1="{pad_l}" y1="{y(c.sla.target_ratio):.1f}" x2="{width - 8}" '
                 f'y2="{y(c.sla.target_ratio):.1f}" stroke="#c53030" stroke-dasharray="4 3"/>')
    pts = [(pad_l + idx[d] * step, y(v)) for d, v in c.sla.daily_availability if v is not None and d in idx]
    if len(pts) > 1:
        parts.append('<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '"/>')
    for (d, day_ratio) in c.sla.daily_availability:
        if day_ratio is not None and d in idx:
            parts.append(f'<circle cx="{pad_l + idx[d] * step:.1f}" cy="{y(day_ratio):.1f}" r="2.5" '
                         f'fill="{"#c53030" if day_ratio < c.sla.target_ratio else "#2b6cb0"}"><title>{_e(d)}: '
                         f'{_pct(day_ratio)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Noto Sans",system-ui,sans-serif;
margin:24px auto;max-width:780px;color:#1a202c}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #cbd5e0}
.muted{color:#4a5568;font-size:12px}.total{font-size:28px;font-weight:700;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{padding:4px 6px;border-bottom:1px solid #e2e8f0;
text-align:right}th:first-child,td:first-child,.l{text-align:left}.bad{color:#c53030;font-weight:600}
.ok{color:#2f855a}.key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def statement_html(bill: DepartmentBill, catalog: Catalog, issued: dt.datetime) -> str:
    """One page a department head can read: totals, charts (inline SVG), SLA, credits, details."""
    from yunshang.billing import bill_days, parse_month, sla_breached

    start, end = parse_month(bill.month)
    days = bill_days(bill)
    to = bill.to or end
    if bill.projected:
        period = f"projected to month end {to.strftime('%Y-%m-%d %H:%M')} UTC (forecast: what is held now, kept)"
    elif to < end:
        period = f"to {to.strftime('%Y-%m-%d %H:%M')} UTC (month not over: charges to date)"
    else:
        period = "whole month"
    cs = bill.contracts
    gross = sum(c.gross_fen for c in cs)
    credit = sum(c.credit_fen for c in cs)
    out = ['<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           f"<title>{_e(bill.display_name)} {_e(bill.month)} 云资源账单 / cloud statement</title>",
           f"<style>{CSS}</style></head><body>",
           f"<h1>{_e(bill.display_name)} ({_e(bill.department)}) — 云资源月度账单 / monthly cloud statement</h1>",
           f'<div class="muted">Month {_e(bill.month)} (UTC), {_e(period)} · issued '
           f'{_e(issued.strftime("%Y-%m-%d %H:%M UTC"))} · one contract per operator, each billed separately</div>',
           ('<div class="total">' + ("PROJECTED " if bill.projected else "") + f"{_cny(bill.net_fen)}</div>"),
           f'<div class="muted">charges {_cny(gross)} − SLA service credits {_cny(credit)} = amount due '
           f"{_cny(bill.net_fen)}</div>",
           "<h2>By contract</h2><table><tr><th>contract</th><th class=l>operator</th><th class=l>role</th>"
           "<th>charges</th><th>availability</th><th>target</th><th>credit</th><th>due</th><th>ceiling used</th></tr>"]
    for c in cs:
        avail = (f'<span class="{"bad" if sla_breached(c.sla) else "ok"}">'
                 f"{_pct(c.sla.availability_ratio)}</span>") if c.sla.availability_ratio is not None \
            else '<span class="muted">no probe data</span>'
        out.append(f"<tr><td>{_e(c.contract)}</td><td class=l>{_e(c.operator)}</td><td class=l>{_e(c.role)}</td>"
                   f"<td>{_cny(c.gross_fen)}</td><td>{avail}</td><td>{_pct(c.sla.target_ratio, 2)}</td>"
                   f"<td>{_pct(c.credit_ratio, 0) if c.credit_fen else '—'} {_cny(c.credit_fen) if c.credit_fen else ''}"
                   f"</td><td><b>{_cny(c.net_fen)}</b></td>"
                   f'<td class="{"bad" if c.over_ceiling else ""}">{_pct(c.ceiling_used_ratio, 1)} of '
                   f"{_cny(int(c.ceiling_cny * 100))}</td></tr>")
    out.append("</table>")
    if any(c.gross_fen for c in cs):
        out.append('<h2>Cost per day</h2><div class="key muted">'
                   + "".join(f'<span style="background:{PALETTE[i % len(PALETTE)]}"></span>{_e(c.contract)}'
                             for i, c in enumerate(cs)) + "</div>")
        out.append(daily_cost_svg(cs, days))
    out.append("<h2>Contract ceiling used</h2>" + ceiling_svg(cs))
    for c in cs:
        if c.sla.has_data:
            out.append(f"<h2>Availability — {_e(c.contract)} ({_e(c.operator)})</h2>")
            out.append(f'<div class="muted">{c.sla.good + c.sla.bad} probe samples counted ({c.sla.bad} failed), '
                       f"{c.sla.excluded} taken in declared maintenance and not counted; probes: "
                       f"{_e(', '.join(c.sla.probes))}. Red dashed line: the SLA target.</div>")
            out.append(availability_svg(c, days))
    windows = []
    for op in sorted({c.operator for c in cs}):
        for w in catalog.provider(op).maintenance:
            ws = w.start if w.start.tzinfo else w.start.replace(tzinfo=dt.timezone.utc)
            we = w.end if w.end.tzinfo else w.end.replace(tzinfo=dt.timezone.utc)
            if ws < end and we > start:
                windows.append(f"<li>{_e(op)}: {_e(ws.strftime('%Y-%m-%d %H:%M'))} – {_e(we.strftime('%Y-%m-%d %H:%M'))}"
                               f" UTC {_e(w.reason)}</li>")
    if windows:
        out.append("<h2>Declared maintenance (excluded from availability)</h2><ul class=muted>"
                   + "".join(windows) + "</ul>")
    out.append("<h2>Details</h2><table><tr><th>contract</th><th class=l>system</th><th class=l>zone</th>"
               "<th>vCPU</th><th>RAM GB</th><th>disk GB</th><th>FIP</th><th>hours</th><th>monthly price</th>"
               "<th>amount</th></tr>")
    for c in cs:
        for li in c.lines:
            h = li.held
            out.append(f"<tr><td>{_e(c.contract)}</td><td class=l>{_e(h.request)} ({_e(h.role)})</td>"
                       f"<td class=l>{_e(h.zone)}</td><td>{h.vcpu:g}</td><td>{h.ram_gb:g}</td><td>{h.disk_gb:g}</td>"
                       f"<td>{h.floating_ips:g}</td><td>{li.hours:,.2f}</td><td>¥{li.monthly_price_cny:,.2f}</td>"
                       f"<td>{_cny(li.amount_fen)}</td></tr>")
    out.append("</table>")
    out.append('<p class="muted">Charges: the operator\'s procured monthly unit prices, prorated by the seconds each '
               "resource was held in the month (from configure to reclaim as recorded in the lifecycle audit log). "
               "Availability: probe samples of the contract's published services in the month, declared "
               "maintenance excluded. Credit: the contract's service-credit tier for that availability.</p>")
    out.append("</body></html>")
    return "\n".join(out)
