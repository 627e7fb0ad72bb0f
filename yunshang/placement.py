"""Contract-aware placement: where each department's request goes, and why (pure).

Each request needs ``count`` instances of one size; all instances of one role
(primary, or the ``dr`` standby copy) go to ONE operator, each instance to one
zone of it. Hard constraints (issue 2):

1. contract: the operator holds a contract with the department valid on the
   date, ``role: primary`` for the primary copy, ``role: backup`` for the
   standby copy, and the standby's operator differs from the primary's;
2. security: operator MLPS level >= the request's; ``secret`` -> dedicated only;
3. capacity: per zone and resource, placed + live usage <= capacity x overcommit;
4. ha: with count >= 2 on an operator with >= 2 zones, at most
   ceil(count / zones) per zone (hence at least two zones);
5. ceiling: per contract, the monthly cost placed under it <= its ceiling;
6. residency: every copy goes to zones whose site is the department's own site
   or an ancestor of it (a township's systems may go up to its county or the
   city, never sideways to another county); ha counts the zones allowed;
7. budget: for a site with ``budget_cny_per_month``, the monthly cost placed
   for departments at that site or below it <= the budget (yunshang.sites).

A role is placed whole or not at all. Objective, in order: place as many
request roles as possible, then the lowest total monthly cost, then the lowest
peak zone utilisation. The algorithm is a regret-ordered greedy (most
constrained and most expensive-to-get-wrong first; cheapest feasible
operator; a dr primary placed together with its standby; per-zone
water-filling to the least utilised zone), then a bounded repair pass (move
roles aside to make room for one left out) and an improvement pass (move
roles to cheaper options that now have room). It runs in O(n log n) for n
request roles; see docs/placement.md for the figures against an exact ILP.
"""
from __future__ import annotations

import datetime as dt
import gc
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from yunshang.model import (
    RESOURCES, Catalog, Contract, Department, Placement, Plan, Request, Unplaced, Usage, ZoneUtilization,
)
from yunshang.sites import SiteTree

EPS = 1e-6
PRIMARY, STANDBY = "primary", "standby"


@dataclass(frozen=True)
class Decision:
    """Why a role went where it went (for people): the chosen option and the rejected ones."""

    department: str
    request: str
    role: str
    chosen: str                       # "" when unplaced
    why: str
    alternatives: tuple[str, ...] = ()


@dataclass(slots=True, eq=False)
class _Item:
    dept: Department
    req: Request
    role: str
    unit: tuple[float, float, float]   # vcpu, ram_gb, disk_gb of one instance
    fips: int
    options: list                       # [(cost, provider_index, contract)] sorted cheapest first
    rejected: list                      # reasons options were excluded before placement
    order_key: tuple = ()
    deferred: bool = False              # its cheapest contract's ceiling cannot hold it with its siblings
    passed_over: tuple = ()             # why cheaper options were not taken
    masks: dict | None = None           # provider index -> allowed zones (bools) where residency limits it
    budgets: tuple = ()                 # (site, budget) of its department's site and ancestors with one


class _State:
    """Free capacity per provider/zone and spend per contract, mutated as roles are placed."""

    def __init__(self, catalog: Catalog, usage: Iterable[Usage]):
        self.providers = catalog.providers
        self.cap = [[(z.capacity("vcpu"), z.capacity("ram_gb"), z.capacity("disk_gb")) for z in p.zones]
                    for p in catalog.providers]
        self.used = [[[0.0, 0.0, 0.0] for _ in p.zones] for p in catalog.providers]
        index = {(p.name, z.name): (i, j) for i, p in enumerate(catalog.providers) for j, z in enumerate(p.zones)}
        for u in usage:
            ij = index.get((u.provider, u.zone))
            if ij is not None:
                cell = self.used[ij[0]][ij[1]]
                cell[0] += u.vcpu
                cell[1] += u.ram_gb
                cell[2] += u.disk_gb
        self.spent: dict[tuple[str, str], float] = {}
        self.site_spent: dict[str, float] = {}   # monthly cost placed per budgeted site (and below)
        self.capacity_failures = 0   # tries refused for want of room (then room, not cost, binds)

        # 1 / capacity per resource (0 where capacity is 0): utilisation = used x inv
        self.inv = [[tuple((1.0 / c) if c > 0 else 0.0 for c in cap) for cap in zs] for zs in self.cap]

    def fit(self, pi: int, zi: int, unit: tuple[float, float, float]) -> int:
        cap, used = self.cap[pi][zi], self.used[pi][zi]
        k = 1 << 30
        for r in range(3):
            s = unit[r]
            if s > 0:
                k = min(k, int((cap[r] - used[r] + EPS) // s))
        return max(k, 0)


def _allocate(state: _State, pi: int, item: _Item) -> list[int] | None:
    """Per-zone instance counts for ``item`` on provider ``pi`` (least-utilised zone first), or None."""
    req = item.req
    u0, u1, u2 = item.unit
    count = req.count
    caps, useds = state.cap[pi], state.used[pi]
    nz = len(caps)
    mask = item.masks.get(pi) if item.masks else None
    nz_ok = nz if mask is None else sum(mask)
    limit = math.ceil(count / nz_ok) if (req.ha and count >= 2 and nz_ok >= 2) else count
    room = []
    total = 0
    for z in range(nz):
        if mask is not None and not mask[z]:
            room.append(0)
            continue
        c, u = caps[z], useds[z]
        k = limit
        if u0 > 0:
            t = int((c[0] - u[0] + EPS) // u0)
            if t < k:
                k = t
        if u1 > 0:
            t = int((c[1] - u[1] + EPS) // u1)
            if t < k:
                k = t
        if u2 > 0:
            t = int((c[2] - u[2] + EPS) // u2)
            if t < k:
                k = t
        if k < 0:
            k = 0
        room.append(k)
        total += k
    if total < count:
        return None
    if nz == 1:
        return [count]
    invs = state.inv[pi]
    if count == 1:                      # the common case: the zone left least utilised
        best, best_val = -1, 0.0
        for z in range(nz):
            if room[z]:
                i, u = invs[z], useds[z]
                v = max(u[0] * i[0], u[1] * i[1], u[2] * i[2]) + max(u0 * i[0], u1 * i[1], u2 * i[2])
                if best < 0 or v < best_val - 1e-12:
                    best, best_val = z, v
        counts = [0] * nz
        counts[best] = 1
        return counts
    level = []
    step = []
    for z in range(nz):
        i, u = invs[z], useds[z]
        level.append(max(u[0] * i[0], u[1] * i[1], u[2] * i[2]))
        step.append(max(u0 * i[0], u1 * i[1], u2 * i[2]))
    counts = [0] * nz
    left = count
    while left:
        best = -1
        best_val = 0.0
        second = math.inf
        for z in range(nz):
            if counts[z] < room[z]:
                v = level[z] + step[z]
                if best < 0 or v < best_val - 1e-12:
                    if best >= 0 and best_val < second:
                        second = best_val
                    best, best_val = z, v
                elif v < second:
                    second = v
        # give the chosen zone as many as keep it at or below the next zone's level
        sb = step[best]
        if second < math.inf and sb > 0:
            n = int((second - level[best]) / sb + 1e-9)
            if n < 1:
                n = 1
            elif n > left:
                n = left
        else:
            n = left
        if n > room[best] - counts[best]:
            n = room[best] - counts[best]
        counts[best] += n
        level[best] += n * sb
        left -= n
    return counts


def _capacity_reason(state: _State, pi: int, item: _Item) -> str:
    p = state.providers[pi]
    unit = item.unit
    mask = item.masks.get(pi) if item.masks else None
    ok = [zi for zi in range(len(p.zones)) if mask is None or mask[zi]]
    fits = {z: state.fit(pi, z, unit) for z in ok}
    limit = math.ceil(item.req.count / len(ok)) if (item.req.ha and item.req.count >= 2 and len(ok) >= 2) \
        else item.req.count
    parts = []
    for zi in ok:
        z = p.zones[zi]
        cap, used = state.cap[pi][zi], state.used[pi][zi]
        tight = min((r for r in range(3) if unit[r] > 0), key=lambda r: (cap[r] - used[r]) / unit[r])
        parts.append(f"{z.name} fits {fits[zi]} ({RESOURCES[tight]} free {_cny(cap[tight] - used[tight])} "
                     f"of {_cny(cap[tight])})")
    ha = f", ha: at most {limit} per zone" if limit < item.req.count else ""
    if len(ok) < len(p.zones):
        out = [z.name for zi, z in enumerate(p.zones) if zi not in fits]
        parts.append(f"residency: not {', '.join(out)} (site{'s' if len(out) > 1 else ''} not "
                     f"{item.dept.site or 'the root'} or above)")
    return (f"capacity on {p.name}: needs {item.req.count} x {unit[0]:g} vCPU/{unit[1]:g} GB RAM/{unit[2]:g} GB disk"
            f"{ha}; {'; '.join(parts)}")


def _commit(state: _State, pi: int, counts: list[int], item: _Item, contract: Contract, cost: float) -> None:
    for zi, n in enumerate(counts):
        if n:
            cell = state.used[pi][zi]
            for r in range(3):
                cell[r] += n * item.unit[r]
    key = (item.dept.name, contract.id)
    state.spent[key] = state.spent.get(key, 0.0) + cost
    for site, _ in item.budgets:
        state.site_spent[site] = state.site_spent.get(site, 0.0) + cost


def _uncommit(state: _State, pi: int, counts: list[int], item: _Item, contract: Contract, cost: float) -> None:
    for zi, n in enumerate(counts):
        if n:
            cell = state.used[pi][zi]
            for r in range(3):
                cell[r] -= n * item.unit[r]
    key = (item.dept.name, contract.id)
    state.spent[key] -= cost
    for site, _ in item.budgets:
        state.site_spent[site] -= cost


def _residency(catalog: Catalog, tree: SiteTree, site: str) -> tuple[dict[int, tuple[bool, ...]], dict[int, str]]:
    """Rule 6 for a department at ``site``: (provider index -> allowed zones, where only some are;
    provider index -> why none is)."""
    masks: dict[int, tuple[bool, ...]] = {}
    off: dict[int, str] = {}
    here = tree.resolve(site)
    for pi, p in enumerate(catalog.providers):
        mask = tuple(tree.allows(here, z.site) for z in p.zones)
        if all(mask):
            continue
        if any(mask):
            masks[pi] = mask
            continue
        where = [(z.name, tree.resolve(z.site)) for z in p.zones]
        if len(where) == 1:
            zs = f"zone {where[0][0]} of {p.name} is at site {where[0][1]}"
        else:
            zs = f"zones of {p.name} are at sites " + ", ".join(f"{z} {s}" for z, s in where)
        off[pi] = f"residency: {zs}, not {here} or above"
    return masks, off


def _contracts_by_role(catalog: Catalog, dept: Department, want: str, day: dt.date,
                       pindex: dict[str, int]) -> tuple[list, list[str]]:
    """The department's contracts of role ``want`` valid on ``day`` as (contract, provider index),
    and why the others do not count (constraint 1)."""
    valid, rejected = [], []
    with_role = [c for c in dept.contracts if c.role == want]
    if not with_role:
        rejected.append(f"contract: department {dept.name} holds no {want} contract")
    for c in with_role:
        if not c.valid_on(day):
            when = "not yet started" if day < c.start else "expired"
            rejected.append(f"contract: {c.id} ({c.provider}) valid {c.start}..{c.end}, {when} on {day}")
            continue
        valid.append((c, pindex[c.provider]))
    return valid, rejected


def _options(catalog: Catalog, req: Request, contracts: tuple[list, list[str]], unit, fips: int,
             excluded: Mapping[str, str], unit_cost: dict,
             off_site: Mapping[int, str] | None = None) -> tuple[list, list[str]]:
    """Feasible (cost, provider index, contract) by the static constraints 1, 2 and 6 (``off_site``:
    provider index -> why none of its zones may hold the department's copies), cheapest first,
    and why the others are not."""
    valid, base = contracts
    opts = []
    rejected = list(base)
    for c, pi in valid:
        p = catalog.providers[pi]
        if p.mlps_level < req.mlps_level:
            rejected.append(f"mlps: {p.name} certified level {p.mlps_level} < required {req.mlps_level}")
            continue
        if req.secret and not p.dedicated:
            rejected.append(f"secret: {p.name} is not a dedicated operator (secret systems need dedicated: true)")
            continue
        if off_site and pi in off_site:
            rejected.append(off_site[pi])
            continue
        if p.name in excluded:
            rejected.append(f"live: {p.name} excluded: {excluded[p.name]}")
            continue
        key = (pi, req.template, req.size)
        uc = unit_cost.get(key)
        if uc is None:
            uc = unit_cost[key] = p.prices.monthly_cny(unit[0], unit[1], unit[2], fips)
        opts.append((round(uc * req.count, 2), pi, c))
    if len(opts) > 1:
        opts.sort(key=_option_key)
    if len(rejected) > 1:
        rejected = _dedupe(rejected)
    return opts, rejected


def _option_key(o: tuple) -> tuple:
    return (o[0], o[1], o[2].id)


def _with_standby_in_mind(primary: list, standby: list) -> list:
    """Order a dr request's primary options by the pair they allow: first those that leave a backup
    operator for the standby copy (cheapest primary + standby together), then the others."""
    def key(o):
        partners = [s[0] for s in standby if s[1] != o[1]]
        if partners:
            return (0, o[0] + min(partners), o[0], o[1], o[2].id)
        return (1, o[0], o[0], o[1], o[2].id)
    return sorted(primary, key=key)


def _dedupe(xs: list[str]) -> list[str]:
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _order_key(item: _Item) -> tuple:
    """Most constrained first, then the largest regret (what a wrong choice costs), then the largest."""
    opts = item.options
    if not opts:
        return (False, 0, 0.0, 0.0, item.dept.name, item.req.name)
    providers = {o[1] for o in opts}
    if len(providers) == 1:
        regret = math.inf
    else:
        first = opts[0][0]
        regret = next(o[0] for o in opts if o[1] != opts[0][1]) - first
    return (item.deferred, len(providers), -regret, -opts[0][0], item.dept.name, item.req.name)


def _roles_at_stake(item: _Item, partner: dict[int, _Item]) -> int:
    """Roles gained by placing ``item``: itself, plus its standby copy when one could follow (the
    standby has a backup option on an operator other than one of the primary's)."""
    sb = partner.get(id(item))
    if item.role == PRIMARY and sb is not None and any(s[1] != o[1] for s in sb.options for o in item.options):
        return 2
    return 1


def _mark_deferred(items: list[_Item], partner: dict[int, _Item]) -> None:
    """Where a department's roles on their only contract exceed its ceiling, keep those with the
    lowest cost per role at stake (the most roles fit) and defer the rest to the end of the queue,
    where they take what is left."""
    groups: dict[tuple[str, str], list[_Item]] = {}
    for it in items:
        if it.options and len({o[2].id for o in it.options}) == 1:   # no other contract to fall back on
            groups.setdefault((it.dept.name, it.options[0][2].id), []).append(it)
    for members in groups.values():
        ceiling = members[0].options[0][2].ceiling_cny_per_month
        if sum(m.options[0][0] for m in members) <= ceiling + EPS:
            continue
        members.sort(key=lambda m: (m.options[0][0], m.req.name))
        keep = _most_roles_under(members, ceiling, partner)
        for i, m in enumerate(members):
            m.deferred = i not in keep
    # the same for a site budget (rule 7) that cannot hold every role of the departments below it
    by_site: dict[str, list[_Item]] = {}
    for it in items:
        if it.options:
            for site, _ in it.budgets:
                by_site.setdefault(site, []).append(it)
    for site, members in sorted(by_site.items()):
        budget = next(b for s, b in members[0].budgets if s == site)
        # a dr primary's standby copy spends under the same budget: count the pair
        cost = {id(m): m.options[0][0] + _standby_cost(m, partner) for m in members}
        if sum(cost.values()) <= budget + EPS:
            continue
        members.sort(key=lambda m: (cost[id(m)], m.dept.name, m.req.name))
        keep = _most_roles_under(members, budget, partner, [cost[id(m)] for m in members])
        for i, m in enumerate(members):
            if i not in keep:
                m.deferred = True


KNAPSACK_MAX_ROLES = 400


def _standby_cost(item: _Item, partner: dict[int, _Item]) -> float:
    sb = partner.get(id(item))
    return sb.options[0][0] if item.role == PRIMARY and sb is not None and sb.options else 0.0


def _most_roles_under(members: list[_Item], ceiling: float, partner: dict[int, _Item],
                      costs: list[float] | None = None) -> set[int]:
    """Indexes of the members to place first: the most roles at stake whose cost (default: each
    one's cheapest option) fits under the ceiling, then the lowest cost (0/1 knapsack over small
    integer values; exact)."""
    values = [_roles_at_stake(m, partner) for m in members]
    costs = costs if costs is not None else [m.options[0][0] for m in members]
    total = sum(values)
    if total > KNAPSACK_MAX_ROLES:              # very large groups: cheapest per role first
        keep, spent = set(), 0.0
        for i in sorted(range(len(members)), key=lambda i: (costs[i] / values[i], i)):
            if spent + costs[i] <= ceiling + EPS:
                keep.add(i)
                spent += costs[i]
        return keep
    best = [0.0] + [math.inf] * total           # best[v]: least cost of a set worth v roles
    take = []
    for i in range(len(members)):
        row = [False] * (total + 1)
        vi, ci = values[i], costs[i]
        for v in range(total, vi - 1, -1):
            c = best[v - vi] + ci
            if c < best[v] - 1e-9:
                best[v] = c
                row[v] = True
        take.append(row)
    v = max(v for v in range(total + 1) if best[v] <= ceiling + EPS)
    keep = set()
    for i in range(len(members) - 1, -1, -1):
        if take[i][v]:
            keep.add(i)
            v -= values[i]
    return keep


def _free_capacity(state: _State, items: list[_Item]) -> list[float]:
    """Free capacity per resource summed over the operators the roles may use."""
    used_providers = {o[1] for it in items for o in it.options}
    free = [0.0, 0.0, 0.0]
    for pi in used_providers:
        for cap, used in zip(state.cap[pi], state.used[pi], strict=True):
            for r in range(3):
                free[r] += max(cap[r] - used[r], 0.0)
    return free


def place(catalog: Catalog, date: dt.date, usage: tuple[Usage, ...] = (), *,
          excluded: Mapping[str, str] | None = None) -> Plan:
    """Place every request of every department (see the module doc for the rules and objective).

    ``usage``: resources already used per provider/zone (live), subtracted from capacity.
    ``excluded``: provider name -> why it may not be used (e.g. its live snapshot failed).
    """
    return place_explained(catalog, date, usage, excluded=excluded, explain=False)[0]


def place_explained(catalog: Catalog, date: dt.date, usage: tuple[Usage, ...] = (), *,
                    excluded: Mapping[str, str] | None = None,
                    explain: bool = True) -> tuple[Plan, tuple[Decision, ...]]:
    """``place`` plus one Decision per request role saying why it went where it went."""
    # The work allocates many small acyclic objects; the cyclic collector's full passes over
    # them made time grow faster than n log n. Pause it for the call (restored after).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _place(catalog, date, usage, dict(excluded or {}), explain)
    finally:
        if was_enabled:
            gc.enable()


def _place(catalog: Catalog, date: dt.date, usage: tuple[Usage, ...], excluded: dict[str, str],
           explain: bool) -> tuple[Plan, tuple[Decision, ...]]:
    run = _run(catalog, date, usage, excluded, small_first=False)
    state, items, placed, why_not = run
    # Roles left out for want of room: capacity, not cost, is what binds. A second pass that
    # takes the smallest roles first usually places more; keep whichever run is better by the
    # objective (more roles placed, then lower cost).
    if state.capacity_failures and len(placed) < len(items):
        other = _run(catalog, date, usage, excluded, small_first=True)
        if _score(other) > _score(run):
            state, items, placed, why_not = other
    return _assemble(catalog, date, state, items, placed, why_not, explain)


def _score(run: tuple) -> tuple[int, float]:
    placed = run[2]
    return (len(placed), -round(sum(v[3] for v in placed.values()), 2))


def _run(catalog: Catalog, date: dt.date, usage: tuple[Usage, ...], excluded: dict[str, str],
         small_first: bool) -> tuple:
    pindex = {p.name: i for i, p in enumerate(catalog.providers)}
    state = _State(catalog, usage)
    tree = SiteTree(catalog.sites)
    residency: dict[str, tuple] = {}
    budgets: dict[str, tuple] = {}

    primaries: list[_Item] = []
    standby_options: dict[int, tuple[list, list[str]]] = {}
    unit_cost: dict = {}
    units: dict = {}
    for dept in catalog.departments:
        prim_contracts = _contracts_by_role(catalog, dept, "primary", date, pindex)
        back_contracts = _contracts_by_role(catalog, dept, "backup", date, pindex)
        site = tree.resolve(dept.site)
        if site not in residency:
            residency[site] = _residency(catalog, tree, site)
            budgets[site] = tuple((s, tree.sites[s].budget_cny_per_month) for s in tree.chain(site)
                                  if tree.sites[s].budget_cny_per_month is not None)
        masks, off_site = residency[site]
        for req in dept.requests:
            tpl = catalog.templates[req.template]
            key = (req.template, req.size)
            unit = units.get(key)
            if unit is None:
                s = tpl.sizes[req.size]
                unit = units[key] = (float(s.vcpu), float(s.ram_gb), float(s.disk_gb))
            opts, rejected = _options(catalog, req, prim_contracts, unit, tpl.floating_ips, excluded, unit_cost,
                                      off_site)
            it = _Item(dept, req, PRIMARY, unit, tpl.floating_ips, opts, rejected, masks=masks or None,
                       budgets=budgets[site])
            if req.dr:
                backup = standby_options[id(it)] = _options(catalog, req, back_contracts, unit, tpl.floating_ips,
                                                            excluded, unit_cost, off_site)
                it.options = _with_standby_in_mind(opts, backup[0])
            primaries.append(it)

    placed: dict[int, tuple] = {}          # id(item) -> (pi, contract, counts, cost)
    why_not: dict[int, list[str]] = {}
    standbys: list[_Item] = []
    partner: dict[int, _Item] = {}
    for it in primaries:
        if it.req.dr:
            opts, rejected = standby_options[id(it)]
            sb = _Item(it.dept, it.req, STANDBY, it.unit, it.fips, opts, list(rejected), masks=it.masks,
                       budgets=it.budgets)
            partner[id(it)] = sb
            partner[id(sb)] = it
            standbys.append(sb)
    _greedy(state, primaries, placed, why_not, partner, small_first)
    for sb in standbys:
        prim = partner[id(sb)]
        got = placed.get(id(prim))
        if got is None:
            sb.options = []
            sb.rejected = ["dr: the primary copy is not placed, so its standby is not either"]
            why_not[id(sb)] = sb.rejected
            continue
        ppi = got[0]
        if any(o[1] == ppi for o in sb.options):
            sb.rejected.append(f"dr: {catalog.providers[ppi].name} also hosts the primary copy; "
                               f"the standby needs a different operator")
            if id(sb) in why_not:
                why_not[id(sb)] = sb.rejected + [r for r in why_not[id(sb)] if r not in sb.rejected]
        sb.options = [o for o in sb.options if o[1] != ppi]
        if id(sb) not in placed and id(sb) not in why_not:
            why_not[id(sb)] = sb.rejected

    items = primaries + standbys
    _repair(state, items, placed, why_not, partner)
    # a primary placed by the repair pass gets its standby tried now, in its primary's order
    for sb in sorted(standbys, key=lambda sb: (partner[id(sb)].order_key, sb.dept.name, sb.req.name)):
        prim = partner[id(sb)]
        got = placed.get(id(prim))
        if id(sb) in placed or got is None or sb.options:
            continue
        opts, rejected = standby_options[id(prim)]
        sb.rejected = list(rejected)
        sb.options = [o for o in opts if o[1] != got[0]]
        if len(sb.options) < len(opts):
            sb.rejected.append(f"dr: {catalog.providers[got[0]].name} also hosts the primary copy; "
                               f"the standby needs a different operator")
        reasons = []
        for cost, pi, contract in sb.options:
            r = _try(state, sb, pi, contract, cost)
            if isinstance(r, str):
                reasons.append(r)
                continue
            _commit(state, pi, r, sb, contract, cost)
            placed[id(sb)] = (pi, contract, r, cost)
            break
        why_not[id(sb)] = sb.rejected + reasons
    _improve(state, items, placed, partner)

    return state, items, placed, why_not



def _greedy(state: _State, items: list[_Item], placed: dict, why_not: dict, partner: dict[int, _Item],
            small_first: bool = False) -> None:
    """Place roles in order (see _order_key). A dr primary is placed together with its standby: the
    first primary option whose operator also leaves room for the standby elsewhere wins; failing
    that, the first option that takes the primary alone."""
    _mark_deferred(items, partner)
    free = _free_capacity(state, items) if small_first else None
    for it in items:
        it.order_key = _order_key(it)
        if free is not None and it.options:
            # smallest share of the capacity per role at stake first (places the most when room binds)
            share = it.req.count * max((it.unit[r] / free[r]) if free[r] > 0 else math.inf for r in range(3))
            k = it.order_key
            it.order_key = (k[0], share / _roles_at_stake(it, partner)) + k[1:]
        else:
            it.order_key = (it.order_key[0], 0.0) + it.order_key[1:]
    for it in sorted(items, key=lambda i: i.order_key):
        reasons: list[str] = []
        sb = partner.get(id(it))
        if sb is not None and not sb.options:
            sb = None                    # no backup operator at all: nothing to pair with
        alone = None
        for cost, pi, contract in it.options:
            got = _try(state, it, pi, contract, cost)
            if isinstance(got, str):
                reasons.append(got)
                continue
            _commit(state, pi, got, it, contract, cost)
            if sb is None:
                placed[id(it)] = (pi, contract, got, cost)
                it.passed_over = tuple(reasons)
                break
            sb_reasons: list[str] = []
            for scost, spi, scontract in sb.options:
                if spi == pi:
                    continue
                sgot = _try(state, sb, spi, scontract, scost)
                if isinstance(sgot, str):
                    sb_reasons.append(sgot)
                    continue
                _commit(state, spi, sgot, sb, scontract, scost)
                placed[id(sb)] = (spi, scontract, sgot, scost)
                break
            if id(sb) in placed:
                placed[id(it)] = (pi, contract, got, cost)
                it.passed_over = tuple(reasons)
                break
            _uncommit(state, pi, got, it, contract, cost)
            if alone is None:
                alone = (cost, pi, contract, tuple(reasons), sb_reasons)
            reasons.append(f"dr: on {state.providers[pi].name} the standby copy would not fit elsewhere")
        else:
            if alone is not None:
                cost, pi, contract, passed, sb_reasons = alone
                again = _try(state, it, pi, contract, cost)
                assert not isinstance(again, str)      # it fitted a moment ago, and nothing changed since
                _commit(state, pi, again, it, contract, cost)
                placed[id(it)] = (pi, contract, again, cost)
                it.passed_over = passed
                why_not[id(sb)] = sb_reasons
            else:
                why_not[id(it)] = it.rejected + reasons


def _money(state: _State, it: _Item, contract: Contract, cost: float) -> str:
    """Why placing ``cost`` under ``contract`` breaks rule 5 (ceiling) or 7 (budget); "" when it does not."""
    spent = state.spent.get((it.dept.name, contract.id), 0.0)
    if spent + cost > contract.ceiling_cny_per_month + EPS:
        return (f"ceiling: contract {contract.id} ceiling {_cny(contract.ceiling_cny_per_month)} CNY/month: "
                f"placing would make it {_cny(spent + cost)}")
    for site, budget in it.budgets:
        total = state.site_spent.get(site, 0.0) + cost
        if total > budget + EPS:
            return f"budget: site {site} {_cny(budget)} CNY/month: placing would make it {_cny(total)}"
    return ""


def _try(state: _State, it: _Item, pi: int, contract: Contract, cost: float) -> list[int] | str:
    why = _money(state, it, contract, cost)
    if why:
        return why
    counts = _allocate(state, pi, it)
    if counts is None:
        state.capacity_failures += 1
        return _capacity_reason(state, pi, it)
    return counts


REPAIR_TRIES_PER_ROLE = 40


def _repair(state: _State, items: list[_Item], placed: dict, why_not: dict, partner: dict[int, _Item]) -> None:
    """Place roles the greedy left out for want of room: move other roles off the operator they need
    to those roles' own other options (cheapest move first), when that makes room. More roles placed
    outranks cost in the objective. Each attempt is bounded, and undone whole when it does not help."""
    blocked = [it for it in items if id(it) not in placed and it.options]
    if not blocked:
        return
    # movable roles per provider, cheapest move first: (extra cost, tie-breakers, item)
    movable: dict[int, list] = {}
    for it in items:
        got = placed.get(id(it))
        if got is None or len(it.options) < 2:
            continue
        pi, _, _, cost = got
        alt = min((o[0] for o in it.options if o[1] != pi), default=None)
        if alt is not None:
            movable.setdefault(pi, []).append((alt - cost, it.dept.name, it.req.name, it.role, it))
    for lst in movable.values():
        lst.sort(key=lambda m: m[:4])
    # standbys carry no order key of their own (the greedy orders primaries): names break ties, so the
    # order the catalog lists departments and requests in never changes the result
    for it in sorted(blocked, key=lambda i: (i.order_key, i.dept.name, i.req.name, i.role)):
        if id(it) in placed:
            continue
        mate = partner.get(id(it))
        mate_pi = placed[id(mate)][0] if mate is not None and id(mate) in placed else -1
        if it.role == STANDBY and mate_pi < 0:
            continue
        for cost, pi, contract in it.options:
            if pi == mate_pi:
                continue
            if _money(state, it, contract, cost):
                continue
            moves = []       # (item, old placement)
            tries = 0
            done = None
            for _, _, _, _, other in movable.get(pi, ()):
                if tries >= REPAIR_TRIES_PER_ROLE:
                    break
                got = placed.get(id(other))
                if got is None or got[0] != pi or other is it or other is mate:
                    continue
                tries += 1
                omate = partner.get(id(other))
                omate_pi = placed[id(omate)][0] if omate is not None and id(omate) in placed else -1
                _uncommit(state, *_as_args(got, other))
                new = None
                for ocost, opi, ocon in sorted(other.options, key=_option_key):
                    if opi == pi or opi == omate_pi:
                        continue
                    r = _try(state, other, opi, ocon, ocost)
                    if not isinstance(r, str):
                        new = (opi, ocon, r, ocost)
                        break
                if new is None:
                    _commit(state, *_as_args(got, other))
                    continue
                _commit(state, *_as_args(new, other))
                placed[id(other)] = new
                moves.append((other, got, other.passed_over))
                other.passed_over = (f"moved off {state.providers[pi].name} to make room for {it.dept.name}/"
                                     f"{it.req.name} ({it.role}), which had no room anywhere",)
                counts = _allocate(state, pi, it)
                if counts is not None and not _money(state, it, contract, cost):
                    done = counts
                    break
            if done is not None:
                _commit(state, pi, done, it, contract, cost)
                placed[id(it)] = (pi, contract, done, cost)
                why_not.pop(id(it), None)
                break
            for other, old, passed in reversed(moves):   # undo: this attempt did not make room
                _uncommit(state, *_as_args(placed[id(other)], other))
                _commit(state, *_as_args(old, other))
                placed[id(other)] = old
                other.passed_over = passed


def _as_args(got: tuple, it: _Item) -> tuple:
    pi, contract, counts, cost = got
    return pi, counts, it, contract, cost


def _improve(state: _State, items: list[_Item], placed: dict, partner: dict[int, _Item]) -> None:
    """Move placed roles to a cheaper option when it has room now (biggest saving first, two rounds).
    A primary may not move onto its standby's operator (and vice versa)."""
    for _ in range(2):
        moved = False
        cands = []
        for it in items:
            got = placed.get(id(it))
            if got is None:
                continue
            if len(it.options) < 2:
                continue
            cost = got[3]
            best = min(o[0] for o in it.options)
            if best < cost - EPS:
                cands.append((best - cost, it.dept.name, it.req.name, it.role, it))
        cands.sort(key=lambda c: c[:4])
        for _, _, _, _, it in cands:
            pi, contract, counts, cost = placed[id(it)]
            mate = partner.get(id(it))
            mate_pi = placed[id(mate)][0] if mate is not None and id(mate) in placed else -1
            _uncommit(state, pi, counts, it, contract, cost)
            new = None
            passed: list[str] = []           # why the options cheaper than the new one are not taken
            for ocost, opi, ocon in sorted(it.options, key=_option_key):
                if ocost >= cost - EPS:
                    break
                if opi == mate_pi:
                    passed.append(f"dr: {state.providers[opi].name} hosts the other copy")
                    continue
                got = _try(state, it, opi, ocon, ocost)
                if not isinstance(got, str):
                    new = (opi, ocon, got, ocost)
                    break
                passed.append(got)
            if new is None:                  # no cheaper option has room: put it back as it was
                _commit(state, pi, counts, it, contract, cost)
                continue
            _commit(state, new[0], new[2], it, new[1], new[3])
            placed[id(it)] = new
            it.passed_over = tuple(passed)
            moved = True
        if not moved:
            break


def _assemble(catalog: Catalog, date: dt.date, state: _State, items: list[_Item], placed: dict,
              why_not: dict, explain: bool) -> tuple[Plan, tuple[Decision, ...]]:
    role_rank = {PRIMARY: 0, STANDBY: 1}
    items = sorted(items, key=lambda i: (i.dept.name, i.req.name, role_rank[i.role]))
    placements, unplaced, decisions = [], [], []
    total = 0.0
    zone_names = [[z.name for z in p.zones] for p in catalog.providers]
    root = SiteTree(catalog.sites).root
    zone_sites = [[z.site or root for z in p.zones] for p in catalog.providers]
    zone_order = [sorted(range(len(names)), key=names.__getitem__) for names in zone_names]
    for it in items:
        got = placed.get(id(it))
        if got is None:
            reasons = tuple(why_not.get(id(it)) or it.rejected or ["no option"])
            unplaced.append(Unplaced(it.dept.name, it.req.name, it.role, reasons))
            if explain:
                decisions.append(Decision(it.dept.name, it.req.name, it.role, "", "; ".join(reasons)))
            continue
        pi, contract, counts, cost = got
        p = catalog.providers[pi]
        n = it.req.count
        placements.append(Placement(
            department=it.dept.name, request=it.req.name, role=it.role, provider=p.name, contract=contract.id,
            zones=tuple((zone_names[pi][j], counts[j]) for j in zone_order[pi] if counts[j]),
            vcpu=int(it.unit[0] * n), ram_gb=int(it.unit[1] * n), disk_gb=int(it.unit[2] * n),
            floating_ips=it.fips * n, monthly_cost_cny=round(cost, 2),
            sites=tuple(sorted({zone_sites[pi][j] for j in range(len(counts)) if counts[j]}))))
        total += cost
        if explain:
            decisions.append(Decision(it.dept.name, it.req.name, it.role, p.name, _why(catalog, it, pi, cost),
                                      tuple(it.rejected)))
    util = []
    for pi, p in enumerate(catalog.providers):
        for zi, z in enumerate(p.zones):
            cap, used = state.cap[pi][zi], state.used[pi][zi]
            ratios = [round(used[r] / cap[r], 4) if cap[r] > 0 else (1.0 if used[r] > 0 else 0.0) for r in range(3)]
            util.append(ZoneUtilization(p.name, z.name, *ratios))
    plan = Plan(date=date, placements=tuple(placements), unplaced=tuple(unplaced), utilization=tuple(util),
                total_monthly_cost_cny=round(total, 2))
    return plan, tuple(decisions)


def _why(catalog: Catalog, it: _Item, pi: int, cost: float) -> str:
    others: dict[int, float] = {}
    for ocost, opi, _ in it.options:
        if opi != pi:
            others.setdefault(opi, ocost)
    if not others:
        only = "only allowed operator" if it.role == PRIMARY else "only allowed backup operator"
        excluded = f"; not: {'; '.join(it.rejected)}" if it.rejected else ""
        return f"{only} ({_cny(cost)} CNY/month){excluded}"
    cheaper = [o for o, c in others.items() if c < cost - EPS]
    alt = ", ".join(f"{catalog.providers[o].name} {_cny(c)}" for o, c in sorted(others.items(), key=lambda kv: kv[1]))
    if not cheaper:
        return f"cheapest allowed operator ({_cny(cost)} CNY/month; {alt})"
    passed = "; ".join(it.passed_over) or "cheaper options had no room"
    return f"cheaper operator not possible: {passed} ({_cny(cost)} CNY/month; {alt})"


def _cny(x: float) -> str:
    """Money for messages: 162400, 1034185.5 (no exponent, no trailing zeros)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- JSON
def plan_to_dict(plan: Plan) -> dict:
    """The plan as the issue's JSON schema (zones as an object)."""
    return {
        "date": plan.date.isoformat(),
        "placements": [
            {"department": p.department, "request": p.request, "role": p.role, "provider": p.provider,
             "contract": p.contract, "zones": {z: n for z, n in p.zones}, "vcpu": p.vcpu, "ram_gb": p.ram_gb,
             "disk_gb": p.disk_gb, "monthly_cost_cny": p.monthly_cost_cny, "site": p.site}
            for p in plan.placements],
        "unplaced": [{"department": u.department, "request": u.request, "role": u.role, "reasons": list(u.reasons)}
                     for u in plan.unplaced],
        "utilization": [{"provider": u.provider, "zone": u.zone, "vcpu_ratio": u.vcpu_ratio,
                         "ram_gb_ratio": u.ram_gb_ratio, "disk_gb_ratio": u.disk_gb_ratio}
                        for u in plan.utilization],
        "total_monthly_cost_cny": plan.total_monthly_cost_cny,
    }


def peak_utilization_ratio(plan: Plan) -> float:
    """The highest resource ratio over all zones (the objective's tie-breaker)."""
    return max((max(u.vcpu_ratio, u.ram_gb_ratio, u.disk_gb_ratio) for u in plan.utilization), default=0.0)
