"""Backup-cloud takeover: trigger evaluation and the move plan. Pure.

The government takeover team moves every department off operator OP to the
operator of its backup contract when a trigger fires:

* ``operator-down``: OP's API has been down (``yunshang_operator_up`` 0) longer
  than OP's RTO (``sla.rto_minutes``), counted back from now to the last up sample;
* ``sla-breached``: some contract with OP breached its SLA in each of the last
  N closed calendar months (``yunshang_sla_breached`` at each month's end);
* ``contract-terminated``: a department's primary contract with OP has ended
  (or is declared terminated), so that department must move.

The adapter (``cli/takeover.py``) reads the samples from Prometheus; this module
decides. ``plan_takeover`` then builds, per affected department, the move to
its backup operator: the capacity check there (the placement core, with the
backup contract acting as primary and live/reserved usage counted), the tenant
spec, the data to restore (standby promotion for ``dr`` requests, restore from
backup for the rest), the order, and the expected time against the RTO.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from yunshang.model import Catalog, Department, Request, Usage

UTC = dt.timezone.utc


# --------------------------------------------------------------------------- triggers
@dataclass(frozen=True)
class Trigger:
    name: str
    fired: bool
    detail: str
    department: str = ""         # set for per-department triggers (contract-terminated)


def down_seconds(up_samples: Sequence[tuple[dt.datetime, float]], now: dt.datetime,
                 stale_after: dt.timedelta = dt.timedelta(minutes=5)) -> float | None:
    """How long the operator has been down at ``now``: now - the first 0 after the last 1.

    0.0 when the newest sample is up; None when there is no sample newer than
    ``stale_after`` (the exporter itself is blind: no evidence either way).
    """
    pts = sorted(p for p in up_samples if p[0] <= now)
    if not pts or now - pts[-1][0] > stale_after:
        return None
    if pts[-1][1] >= 1:
        return 0.0
    first_down = pts[-1][0]
    for t, v in reversed(pts):
        if v >= 1:
            break
        first_down = t
    return (now - first_down).total_seconds()


def evaluate_triggers(catalog: Catalog, operator: str, now: dt.datetime,
                      up_samples: Sequence[tuple[dt.datetime, float]],
                      breached_months: Mapping[str, Sequence[bool]], breach_months_needed: int = 2,
                      terminated: Iterable[str] = ()) -> tuple[Trigger, ...]:
    """All triggers for ``operator``. ``breached_months[contract]`` = breached? for the last closed
    months, oldest first; ``terminated`` = contract ids declared terminated early."""
    prov = catalog.provider(operator)
    out = []
    down = down_seconds(up_samples, now)
    rto = prov.sla.rto_minutes * 60
    if down is None:
        out.append(Trigger("operator-down", False, f"no recent yunshang_operator_up sample for {operator}: "
                                                   "no evidence (check the exporter)"))
    else:
        out.append(Trigger("operator-down", down > rto,
                           f"{operator} API down for {down / 60:.1f} min (RTO {prov.sla.rto_minutes} min)"
                           if down else f"{operator} API up"))
    worst = []
    for cid, months in sorted(breached_months.items()):
        recent = list(months)[-breach_months_needed:]
        if len(recent) == breach_months_needed and all(recent):
            worst.append(cid)
    out.append(Trigger("sla-breached", bool(worst),
                       (f"SLA breached {breach_months_needed} months running: {', '.join(worst)}" if worst else
                        f"no contract with {operator} breached {breach_months_needed} months running")))
    declared = set(terminated)
    day = now.date()
    for d in catalog.departments:
        for c in d.contracts:
            if c.provider != operator or c.role != "primary":
                continue
            if c.id in declared:
                out.append(Trigger("contract-terminated", True, f"{c.id} declared terminated", d.name))
            elif c.end < day and not any(x.provider == operator and x.role == "primary" and x.valid_on(day)
                                         for x in d.contracts):
                out.append(Trigger("contract-terminated", True, f"{c.id} ended {c.end.isoformat()}", d.name))
    return tuple(out)


def departments_to_move(triggers: Sequence[Trigger], candidates: Iterable[str]) -> tuple[str, ...]:
    """Operator-wide triggers move every candidate; contract-terminated only its department."""
    cands = sorted(set(candidates))
    if any(t.fired and not t.department for t in triggers):
        return tuple(cands)
    return tuple(d for d in cands if any(t.fired and t.department == d for t in triggers))


# --------------------------------------------------------------------------- the move plan
@dataclass(frozen=True)
class Timing:
    """Expected durations; defaults are conservative and the drill's evidence calibrates them."""

    tenant_base_seconds: float = 120.0       # project, users, network, router, groups
    per_server_seconds: float = 20.0
    restore_gb_per_hour: float = 500.0
    promote_standby_seconds: float = 300.0   # switch a dr request to its standby copy
    parallel_tenants: int = 1                # tenants rebuilt at once


@dataclass(frozen=True)
class DataStep:
    request: str
    how: str                     # promote-standby | restore-from-backup | none
    gb: float
    detail: str


@dataclass(frozen=True)
class Move:
    order: int
    department: str
    mlps_level: int
    from_operator: str
    to_operator: str
    backup_contract: str
    requests: tuple[str, ...]
    servers: int
    vcpu: float
    ram_gb: float
    disk_gb: float
    capacity_ok: bool
    problems: tuple[str, ...]
    data: tuple[DataStep, ...]
    expected_seconds: float
    done_after_seconds: float    # cumulative, in order
    rto_seconds: float
    monthly_cost_cny: float

    @property
    def within_rto(self) -> bool:
        return self.capacity_ok and self.done_after_seconds <= self.rto_seconds


@dataclass(frozen=True)
class TakeoverPlan:
    operator: str
    at: dt.datetime
    triggers: tuple[Trigger, ...]
    moves: tuple[Move, ...]

    @property
    def triggered(self) -> bool:
        return any(t.fired for t in self.triggers)


def backup_contract(dept: Department, operator: str, day: dt.date):
    """The department's valid backup contract with an operator other than ``operator`` (cheapest ceiling first)."""
    cs = [c for c in dept.contracts if c.role == "backup" and c.provider != operator and c.valid_on(day)]
    return sorted(cs, key=lambda c: (c.provider, c.id))[0] if cs else None


def takeover_catalog(catalog: Catalog, dept: Department, requests: Sequence[Request], operator: str, day: dt.date):
    """The catalog in which the backup contract acts as the department's primary and OP is gone."""
    bc = backup_contract(dept, operator, day)
    if bc is None:
        return None, None
    as_primary = dataclasses.replace(bc, role="primary")
    # dr requests already have their standby copy on the backup operator: promoted, not re-placed
    moved = tuple(dataclasses.replace(r, dr=False) for r in requests if not r.dr)
    d2 = dataclasses.replace(dept, contracts=(as_primary,), requests=moved)
    return dataclasses.replace(catalog, departments=(d2,)), bc


def plan_takeover(catalog: Catalog, operator: str, at: dt.datetime, triggers: Sequence[Trigger],
                  affected: Mapping[str, Sequence[Request]], usage: Sequence[Usage] = (),
                  timing: Timing = Timing(), place=None, force: bool = False) -> TakeoverPlan:
    """The move of every affected department (``affected[dept]`` = its requests on OP).

    Moves are planned in order — departments that can move first, highest MLPS level first, then
    smallest first (most systems back soonest) — each capacity-checked with the usage of the moves
    before it counted. A move that cannot happen (no backup contract, no room, over the ceiling)
    adds no time to the sequence.
    ``place`` is ``yunshang.placement.place`` (passed in to keep this module import-light).
    With ``force`` the plan is made even when no trigger fired (drills).
    """
    if place is None:
        from yunshang.placement import place as _place
        place = _place
    day = at.date()
    prov = catalog.provider(operator)
    rto = prov.sla.rto_minutes * 60
    movers = departments_to_move(triggers, affected) if not force else tuple(sorted(affected))
    depts = [catalog.department(d) for d in movers]
    sizes = {d.name: sum(_size(catalog, r)[0] for r in affected[d.name]) for d in depts}
    depts.sort(key=lambda d: (backup_contract(d, operator, day) is None, -d.mlps_level, sizes[d.name], d.name))
    used = {(u.provider, u.zone): [u.vcpu, u.ram_gb, u.disk_gb] for u in usage}
    moves, clock = [], 0.0
    for i, dept in enumerate(depts, 1):
        reqs = tuple(affected[dept.name])
        cat2, bc = takeover_catalog(catalog, dept, reqs, operator, day)
        problems: list[str] = []
        vcpu = ram = disk = 0.0
        cost = 0.0
        servers = sum(r.count for r in reqs)
        if cat2 is None:
            problems.append(f"{dept.name} holds no valid backup contract with an operator other than {operator}")
            to_op, bc_id = "", ""
        else:
            to_op, bc_id = bc.provider, bc.id
            cur = tuple(Usage(p, z, *v) for (p, z), v in sorted(used.items()))
            plan = place(cat2, day, usage=cur) if cat2.department(dept.name).requests else None
            plan_placements = plan.placements if plan else ()
            for u in (plan.unplaced if plan else ()):
                problems.append(f"{u.request}: " + "; ".join(u.reasons))
            for p in plan_placements:
                vcpu += p.vcpu
                ram += p.ram_gb
                disk += p.disk_gb
                cost += p.monthly_cost_cny
                total = sum(n for _, n in p.zones) or 1
                for zone, n in p.zones:
                    acc = used.setdefault((p.provider, zone), [0.0, 0.0, 0.0])
                    acc[0] += p.vcpu * n / total
                    acc[1] += p.ram_gb * n / total
                    acc[2] += p.disk_gb * n / total
        data = []
        seconds = timing.tenant_base_seconds
        for r in reqs:
            gb = _volume_gb(catalog, r)
            if r.dr and to_op:
                data.append(DataStep(r.name, "promote-standby", gb, f"standby copy on {to_op} already holds the "
                                     f"data; loss up to the RPO ({prov.sla.rpo_minutes} min)"))
                seconds += timing.promote_standby_seconds
            elif gb:
                data.append(DataStep(r.name, "restore-from-backup", gb, f"restore {gb:g} GB of volumes from the last "
                                     f"backup; re-create {r.count} server(s)"))
                seconds += gb / timing.restore_gb_per_hour * 3600 + r.count * timing.per_server_seconds
            else:
                data.append(DataStep(r.name, "none", 0, f"stateless: re-create {r.count} server(s)"))
                seconds += r.count * timing.per_server_seconds
        if not problems:            # a move that cannot happen takes no time in the sequence
            clock += seconds / max(timing.parallel_tenants, 1)     # tenants rebuilt N at a time
        moves.append(Move(i, dept.name, dept.mlps_level, operator, to_op, bc_id, tuple(r.name for r in reqs), servers,
                          vcpu, ram, disk, not problems, tuple(problems), tuple(data), seconds, clock, rto,
                          round(cost, 2)))
    return TakeoverPlan(operator, at, tuple(triggers), tuple(moves))


def _size(catalog: Catalog, r: Request) -> tuple[float, float, float]:
    t = catalog.templates.get(r.template)
    if t is None or r.size not in t.sizes:
        return (0.0, 0.0, 0.0)
    s = t.sizes[r.size]
    return (s.vcpu * r.count, s.ram_gb * r.count, s.disk_gb * r.count)


def _volume_gb(catalog: Catalog, r: Request) -> float:
    t = catalog.templates.get(r.template)
    if t is None:
        return 0.0
    return float(sum(v.size_gb for v in t.volumes) * r.count)


def affected_from_catalog(catalog: Catalog, operator: str, day: dt.date, place=None) -> dict[str, tuple[Request, ...]]:
    """Departments with primary placements on ``operator`` in the catalog's plan, and those requests."""
    if place is None:
        from yunshang.placement import place as _place
        place = _place
    plan = place(catalog, day)
    out: dict[str, list[Request]] = {}
    for p in plan.placements:
        if p.provider == operator and p.role == "primary":
            req = next(r for r in catalog.department(p.department).requests if r.name == p.request)
            out.setdefault(p.department, []).append(req)
    return {k: tuple(v) for k, v in sorted(out.items())}


def plan_to_dict(plan: TakeoverPlan) -> dict:
    return {
        "operator": plan.operator, "at": plan.at.isoformat(), "triggered": plan.triggered,
        "triggers": [dataclasses.asdict(t) for t in plan.triggers],
        "moves": [{**{k: v for k, v in dataclasses.asdict(m).items() if k != "data"},
                   "data": [dataclasses.asdict(d) for d in m.data], "within_rto": m.within_rto} for m in plan.moves],
    }
