"""Property: for random catalogs (with and without sites), a plan never breaks a hard constraint
(checked independently)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

from hypothesis import HealthCheck, given, settings, strategies as st

from catalog_fixtures import DAY, catalog, contract, department, provider, request, template
from yunshang.model import Site, Size, Usage
from yunshang.placement import place

NAMES = ["p0", "p1", "p2"]
# a small hierarchy: city c; counties k1, k2; township t1 under k1
TREE = (("c", "city", ""), ("k1", "county", "c"), ("k2", "county", "c"), ("t1", "township", "k1"))


@st.composite
def catalogs(draw):
    n_prov = draw(st.integers(1, 3))
    provs = []
    for i in range(n_prov):
        nz = draw(st.integers(1, 3))
        zones = tuple((f"az{j + 1}", draw(st.integers(0, 80)), draw(st.integers(0, 320)), draw(st.integers(0, 6000)))
                      for j in range(nz))
        provs.append(provider(NAMES[i], zones, mlps=draw(st.integers(2, 4)), dedicated=draw(st.booleans()),
                              prices=(draw(st.integers(1, 50)), draw(st.integers(1, 20)), 0.5, 10),
                              overcommit=draw(st.sampled_from([1.0, 1.5, 4.0]))))
    sited = draw(st.booleans())
    if sited:
        sites = tuple(Site(n, t, n, p, draw(st.sampled_from([None, None, 400, 3000, 20000]))) for n, t, p in TREE)
        names = [n for n, _, _ in TREE]
        provs = [dataclasses.replace(p, zones=tuple(dataclasses.replace(z, site=draw(st.sampled_from(names)))
                                                    for z in p.zones)) for p in provs]
    depts = []
    for d in range(draw(st.integers(1, 4))):
        cons = []
        for c in range(draw(st.integers(0, 5))):
            start = DAY + dt.timedelta(days=draw(st.integers(-400, 3)))
            cons.append(contract(f"d{d}-c{c}", NAMES[draw(st.integers(0, n_prov - 1))],
                                 draw(st.sampled_from(["primary", "primary", "backup"])), start=start,
                                 end=start + dt.timedelta(days=draw(st.integers(100, 1200))),
                                 ceiling=draw(st.sampled_from([0, 3000, 20000, 1e9, 1e9]))))
        reqs = [request(f"r{r}", draw(st.integers(1, 6)), size=draw(st.sampled_from(["small", "large"])),
                        level=draw(st.integers(1, 4)), ha=draw(st.booleans()), dr=draw(st.booleans()),
                        secret=draw(st.sampled_from([False, False, False, True])))
                for r in range(draw(st.integers(1, 5)))]
        dep = department(f"dept{d}", cons, reqs)
        if sited:
            dep = dataclasses.replace(dep, site=draw(st.sampled_from(names)))
        depts.append(dep)
    usage = tuple(Usage(p.name, z.name, vcpu=draw(st.integers(0, 20)), ram_gb=draw(st.integers(0, 40)))
                  for p in provs for z in p.zones if draw(st.booleans()))
    cat = catalog(provs, depts, [template("web", {"small": Size(2, 4, 50), "large": Size(8, 32, 500)}, 1)])
    if sited:
        cat = dataclasses.replace(cat, sites=sites)
    return cat, usage


def _up(cat, site):
    """The site and its ancestors, walked from the catalog's sites (root for "")."""
    parent = {s.name: s.parent for s in cat.sites}
    if not parent:
        return [""]
    n = site or next(k for k, v in parent.items() if not v)
    out = []
    while n:
        out.append(n)
        n = parent[n]
    return out


def check_plan(cat, day, usage, plan):
    """An independent checker of issue 2's hard constraints. Returns a list of violations."""
    bad = []
    provs = {p.name: p for p in cat.providers}
    used = {(p.name, z.name): [0.0, 0.0, 0.0] for p in cat.providers for z in p.zones}
    for u in usage:
        cell = used[(u.provider, u.zone)]
        cell[0] += u.vcpu
        cell[1] += u.ram_gb
        cell[2] += u.disk_gb
    spent = {}
    site_spent = {}
    seen = {}
    for pl in plan.placements:
        d = cat.department(pl.department)
        r = next(x for x in d.requests if x.name == pl.request)
        c = d.contract(pl.contract)
        p = provs[pl.provider]
        t = cat.templates[r.template]
        s = t.sizes[r.size]
        key = (pl.department, pl.request, pl.role)
        if key in seen:
            bad.append(f"{key} placed twice")
        seen[key] = pl
        if c.provider != p.name:
            bad.append(f"{key}: contract {c.id} is with {c.provider}, not {p.name}")
        if not (c.start <= day <= c.end):
            bad.append(f"{key}: contract {c.id} not valid on {day}")
        want = {"primary": "primary", "standby": "backup"}[pl.role]
        if c.role != want:
            bad.append(f"{key}: {pl.role} under a {c.role} contract")
        if pl.role == "standby" and not r.dr:
            bad.append(f"{key}: standby for a request without dr")
        if p.mlps_level < r.mlps_level:
            bad.append(f"{key}: mlps {p.mlps_level} < {r.mlps_level}")
        if r.secret and not p.dedicated:
            bad.append(f"{key}: secret on non-dedicated {p.name}")
        zones = dict(pl.zones)
        if sum(zones.values()) != r.count:
            bad.append(f"{key}: {sum(zones.values())} instances, wanted {r.count}")
        if not set(zones) <= {z.name for z in p.zones}:
            bad.append(f"{key}: unknown zones {zones}")
        up = _up(cat, d.site)
        home = [z for z in p.zones if (_up(cat, z.site)[0] if z.site or cat.sites else "") in up]
        for z, n in zones.items():
            if n and p.zone(z) not in home:
                bad.append(f"{key}: residency: zone {z} at {p.zone(z).site!r}, department at {up}")
        if r.ha and r.count >= 2 and len(home) >= 2:
            cap = math.ceil(r.count / len(home))
            if max(zones.values()) > cap or sum(1 for v in zones.values() if v) < 2:
                bad.append(f"{key}: ha spread {zones} breaks ceil({r.count}/{len(home)})")
        for z, n in zones.items():
            cell = used[(p.name, z)]
            cell[0] += n * s.vcpu
            cell[1] += n * s.ram_gb
            cell[2] += n * s.disk_gb
        cost = r.count * (s.vcpu * p.prices.vcpu + s.ram_gb * p.prices.ram_gb + s.disk_gb * p.prices.disk_gb
                          + t.floating_ips * p.prices.floating_ip)
        if abs(cost - pl.monthly_cost_cny) > 0.01:
            bad.append(f"{key}: cost {pl.monthly_cost_cny} != {cost}")
        spent[(d.name, c.id)] = spent.get((d.name, c.id), 0.0) + cost
        for site in up:
            site_spent[site] = site_spent.get(site, 0.0) + cost
    for (pn, zn), cell in used.items():
        z = provs[pn].zone(zn)
        base = [sum(getattr(u, res) for u in usage if (u.provider, u.zone) == (pn, zn))
                for res in ("vcpu", "ram_gb", "disk_gb")]
        for i, res in enumerate(("vcpu", "ram_gb", "disk_gb")):
            placed = cell[i] - base[i]
            if placed > 0 and cell[i] > z.capacity(res) + 1e-6:
                bad.append(f"{pn}/{zn}: {res} {cell[i]} > {z.capacity(res)}")
    reported = {(u.provider, u.zone): (u.vcpu_ratio, u.ram_gb_ratio, u.disk_gb_ratio) for u in plan.utilization}
    for (pn, zn), cell in used.items():
        z = provs[pn].zone(zn)
        for i, res in enumerate(("vcpu", "ram_gb", "disk_gb")):
            cap = z.capacity(res)
            want = cell[i] / cap if cap > 0 else (1.0 if cell[i] > 0 else 0.0)
            if abs(reported[(pn, zn)][i] - want) > 1e-3:
                bad.append(f"{pn}/{zn}: reported {res} ratio {reported[(pn, zn)][i]} != {want:.4f} from placements")
    for (dn, cid), total in spent.items():
        if total > cat.department(dn).contract(cid).ceiling_cny_per_month + 1e-6:
            bad.append(f"{dn}/{cid}: spend {total} over ceiling")
    for s in cat.sites:
        if s.budget_cny_per_month is not None and site_spent.get(s.name, 0.0) > s.budget_cny_per_month + 1e-6:
            bad.append(f"site {s.name}: spend {site_spent[s.name]} over budget {s.budget_cny_per_month}")
    for key, pl in seen.items():
        if pl.role == "standby":
            prim = seen.get((key[0], key[1], "primary"))
            if prim is None:
                bad.append(f"{key}: standby without a placed primary")
            elif prim.provider == pl.provider:
                bad.append(f"{key}: standby on the primary's operator {pl.provider}")
    expected = {(d.name, r.name, role) for d in cat.departments for r in d.requests
                for role in (("primary", "standby") if r.dr else ("primary",))}
    reported = set(seen) | {(u.department, u.request, u.role) for u in plan.unplaced}
    if reported != expected or len(plan.placements) + len(plan.unplaced) != len(expected):
        bad.append(f"roles reported {sorted(reported)} != expected {sorted(expected)}")
    if abs(plan.total_monthly_cost_cny - sum(p.monthly_cost_cny for p in plan.placements)) > 0.01:
        bad.append("total is not the sum of placements")
    return bad


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_random_catalogs_never_break_a_hard_constraint(data):
    cat, usage = data
    plan = place(cat, DAY, usage)
    assert check_plan(cat, DAY, usage, plan) == []
    assert place(cat, DAY, usage) == plan                      # deterministic
    # ... and independent of the order departments and requests are listed in
    reordered = dataclasses.replace(cat, departments=tuple(
        dataclasses.replace(d, requests=tuple(reversed(d.requests))) for d in reversed(cat.departments)))
    assert place(reordered, DAY, usage) == plan


def test_the_checker_catches_violations():
    """The checker itself must fail on a plan that breaks the rules (else the property proves nothing)."""
    import dataclasses

    cat = catalog([provider("p0", (("az1", 10, 40, 1000), ("az2", 10, 40, 1000)))],
                  [department("d", [contract("c", "p0", ceiling=1e9)], [request("r", 2, ha=True)])])
    plan = place(cat, DAY)
    assert check_plan(cat, DAY, (), plan) == []
    pl = plan.placements[0]
    for broken in (dataclasses.replace(pl, zones=(("az1", 2),)),                 # ha
                   dataclasses.replace(pl, zones=(("az1", 1),)),                 # count
                   dataclasses.replace(pl, contract="c", provider="p0", monthly_cost_cny=1.0)):   # cost
        assert check_plan(cat, DAY, (), dataclasses.replace(plan, placements=(broken,)))
    tight = catalog([provider("p0", (("az1", 2, 40, 1000), ("az2", 2, 40, 1000)))],
                    [department("d", [contract("c", "p0", ceiling=1)], [request("r", 2, ha=True)])])
    assert any("over ceiling" in b for b in check_plan(tight, DAY, (), plan))
    assert any("> 2" in b for b in check_plan(tight, DAY, (Usage("p0", "az1", vcpu=2),), plan))
    # residency and budget (rules 6-7): the same plan judged against a catalog with sites
    p0 = cat.providers[0]
    sited = dataclasses.replace(cat, sites=(Site("c", "city"), Site("k1", "county", "", "c", 100),
                                            Site("k2", "county", "", "c")),
                                providers=(dataclasses.replace(p0, zones=(
                                    dataclasses.replace(p0.zones[0], site="k2"), p0.zones[1])),),
                                departments=(dataclasses.replace(cat.departments[0], site="k1"),))
    found = check_plan(sited, DAY, (), plan)
    assert any("residency: zone az1" in b for b in found) and any("over budget 100" in b for b in found)
