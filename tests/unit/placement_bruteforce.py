"""An exhaustive placement of tiny catalogs, written from the rules in issue 2 (not from placement.py).

Every role (a request's primary copy, and its standby copy when ``dr``) is either left out or put
under one of its allowed contracts with one split of its instances over the operator's zones; every
combination that keeps the hard rules is tried. The optimum is the objective's first two terms:
the most roles placed, then the lowest total monthly cost. Only for catalogs of a few roles.
"""
from __future__ import annotations

import itertools
import math

EPS = 1e-6


def _splits(count: int, nz: int, cap_per_zone: int):
    for combo in itertools.product(range(min(count, cap_per_zone) + 1), repeat=nz):
        if sum(combo) == count:
            yield combo


def roles(cat, day, excluded=()):
    """(department, request, role, options); options = [(provider index, contract, cost, splits)]."""
    out = []
    for d in cat.departments:
        for r in d.requests:
            t = cat.templates[r.template]
            s = t.sizes[r.size]
            for role, want in (("primary", "primary"), ("standby", "backup")):
                if role == "standby" and not r.dr:
                    continue
                opts = []
                for c in d.contracts:
                    if c.role != want or not (c.start <= day <= c.end):
                        continue
                    pi = next(i for i, p in enumerate(cat.providers) if p.name == c.provider)
                    p = cat.providers[pi]
                    if p.mlps_level < r.mlps_level or (r.secret and not p.dedicated) or p.name in excluded:
                        continue
                    unit = p.prices.vcpu * s.vcpu + p.prices.ram_gb * s.ram_gb + p.prices.disk_gb * s.disk_gb \
                        + p.prices.floating_ip * t.floating_ips
                    nz = len(p.zones)
                    limit = math.ceil(r.count / nz) if (r.ha and r.count >= 2 and nz >= 2) else r.count
                    opts.append((pi, c, round(unit * r.count, 2), list(_splits(r.count, nz, limit)),
                                 (s.vcpu, s.ram_gb, s.disk_gb)))
                out.append((d.name, r.name, role, opts))
    return out


def optimum(cat, day, usage=(), excluded=()):
    """(roles placed, total cost) of the best plan."""
    rs = roles(cat, day, excluded)
    free = {}
    for p in cat.providers:
        for z in p.zones:
            free[(p.name, z.name)] = [z.capacity("vcpu"), z.capacity("ram_gb"), z.capacity("disk_gb")]
    for u in usage:
        cell = free.get((u.provider, u.zone))
        if cell is not None:
            cell[0] -= u.vcpu
            cell[1] -= u.ram_gb
            cell[2] -= u.disk_gb
    spent: dict = {}
    primary_at: dict = {}
    best = [(0, 0.0)]

    def better(a, b):
        return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1] - 0.005)

    def go(i, placed, cost):
        if placed + (len(rs) - i) < best[0][0]:
            return
        if i == len(rs):
            if better((placed, cost), best[0]):
                best[0] = (placed, round(cost, 2))
            return
        dept, req, role, opts = rs[i]
        go(i + 1, placed, cost)                                       # left out
        if role == "standby" and (dept, req) not in primary_at:
            return
        for pi, c, ocost, splits, unit in opts:
            p = cat.providers[pi]
            if role == "standby" and primary_at[(dept, req)] == pi:
                continue
            key = (dept, c.id)
            if spent.get(key, 0.0) + ocost > c.ceiling_cny_per_month + EPS:
                continue
            for split in splits:
                cells = [free[(p.name, z.name)] for z in p.zones]
                if any(n and any(cells[j][k] - n * unit[k] < -EPS for k in range(3)) for j, n in enumerate(split)):
                    continue
                for j, n in enumerate(split):
                    for k in range(3):
                        cells[j][k] -= n * unit[k]
                spent[key] = spent.get(key, 0.0) + ocost
                if role == "primary":
                    primary_at[(dept, req)] = pi
                go(i + 1, placed + 1, cost + ocost)
                if role == "primary":
                    del primary_at[(dept, req)]
                spent[key] -= ocost
                for j, n in enumerate(split):
                    for k in range(3):
                        cells[j][k] += n * unit[k]

    go(0, 0, 0.0)
    return best[0]
