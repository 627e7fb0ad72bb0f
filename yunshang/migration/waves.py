"""Wave planning (pure): dependency order, caps per wave and per conversion host, windows.

Rules, in the order they bind:

1. A host moves in a wave strictly after every wave holding a host it depends on.
   Cycles are reported (each cycle once, as ``a -> b -> a``) as survey problems.
2. At most ``max_hosts_per_wave`` hosts are in flight in a wave, and each
   conversion host converts at most ``max_hosts_per_conversion_host`` of them.
3. All hosts of a wave share one maintenance opening: the wave's window is the
   intersection of its hosts' windows and must leave ``wave_minutes`` of time;
   a host that would shrink it below that waits for a later wave.
4. Waves are scheduled one after another: wave k+1 opens no earlier than wave k
   opens + ``wave_minutes``.

Among hosts ready for a wave, the ones heading the longest dependency chains
go first (they gate the most later waves), then by department, business
system, hostname: deterministic, so the same survey gives the same plan.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from yunshang.errors import Problem, SurveyInvalid
from yunshang.migration.survey import Survey, SurveyHost
from yunshang.migration.windows import ANY, WeeklyWindow, describe, intersect, next_opening


@dataclass(frozen=True)
class WaveOptions:
    max_hosts_per_wave: int = 8
    max_hosts_per_conversion_host: int = 4
    conversion_hosts: tuple[str, ...] = ("localhost",)
    wave_minutes: int = 120                 # time a wave needs inside its maintenance window

    def problems(self) -> list[str]:
        out = []
        if self.max_hosts_per_wave < 1:
            out.append("max_hosts_per_wave must be >= 1")
        if self.max_hosts_per_conversion_host < 1:
            out.append("max_hosts_per_conversion_host must be >= 1")
        if not self.conversion_hosts:
            out.append("at least one conversion host is needed")
        if not 1 <= self.wave_minutes <= 7 * 1440:
            out.append("wave_minutes must be 1..10080")
        return out


@dataclass(frozen=True)
class Wave:
    number: int                               # 1-based
    hosts: tuple[str, ...]
    conversion: tuple[tuple[str, str], ...]   # (host, conversion host)
    window: str                               # the shared window, described
    starts_at: dt.datetime

    def conversion_host(self, host: str) -> str:
        return dict(self.conversion)[host]


def find_cycles(hosts: tuple[SurveyHost, ...] | list[SurveyHost]) -> list[tuple[str, ...]]:
    """Every elementary dependency cycle found by DFS, each once, rotated to start at its least name."""
    deps = {h.hostname: tuple(d for d in h.depends_on) for h in hosts}
    cycles: set[tuple[str, ...]] = set()
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        color[n] = 1
        stack.append(n)
        for d in sorted(deps.get(n, ())):
            if d not in deps:
                continue
            if color.get(d) == 1:
                cyc = stack[stack.index(d):]
                i = cyc.index(min(cyc))
                cycles.add(tuple(cyc[i:] + cyc[:i]))
            elif color.get(d) is None:
                visit(d)
        stack.pop()
        color[n] = 2

    for n in sorted(deps):
        if color.get(n) is None:
            visit(n)
    return sorted(cycles)


def _heights(hosts: dict[str, SurveyHost]) -> dict[str, int]:
    """Length of the longest chain of hosts that (transitively) depend on each host."""
    dependents: dict[str, list[str]] = {n: [] for n in hosts}
    for h in hosts.values():
        for d in h.depends_on:
            dependents[d].append(h.hostname)
    memo: dict[str, int] = {}

    def height(n: str) -> int:
        if n not in memo:
            memo[n] = 1 + max((height(m) for m in dependents[n]), default=0)
        return memo[n]

    return {n: height(n) for n in hosts}


def plan_waves(survey: Survey, options: WaveOptions, not_before: dt.datetime) -> tuple[Wave, ...]:
    """Group the survey's hosts into ordered waves (see module docstring)."""
    problems = [Problem(survey.file, "options", p) for p in options.problems()]
    for cyc in find_cycles(survey.hosts):
        row = survey.host(cyc[0]).row
        problems.append(Problem(survey.file, "depends_on", "dependency cycle: " + " -> ".join(cyc + (cyc[0],)), row))
    for h in survey.hosts:
        if next_opening(h.window, not_before, options.wave_minutes) is None:
            problems.append(Problem(survey.file, "maintenance_window",
                                    f"{h.hostname}: window {h.maintenance_window!r} has no opening of "
                                    f"{options.wave_minutes} minutes (the time one wave needs)", h.row))
    if problems:
        raise SurveyInvalid(problems)

    by_name = {h.hostname: h for h in survey.hosts}
    heights = _heights(by_name)
    placed: set[str] = set()
    remaining = set(by_name)
    waves: list[Wave] = []
    opens_after = not_before
    cap_wave = min(options.max_hosts_per_wave, options.max_hosts_per_conversion_host * len(options.conversion_hosts))
    while remaining:
        ready = [by_name[n] for n in remaining if all(d in placed for d in by_name[n].depends_on)]
        ready.sort(key=lambda h: (-heights[h.hostname], h.department, h.business_system, h.hostname))
        chosen: list[SurveyHost] = []
        window: WeeklyWindow = ANY
        load = {c: 0 for c in options.conversion_hosts}
        conversion: list[tuple[str, str]] = []
        for h in ready:
            if len(chosen) >= cap_wave:
                break
            shared = intersect(window, h.window)
            if next_opening(shared, opens_after, options.wave_minutes) is None:
                continue
            conv = min((c for c in options.conversion_hosts if load[c] < options.max_hosts_per_conversion_host),
                       key=lambda c: (load[c], options.conversion_hosts.index(c)))
            load[conv] += 1
            conversion.append((h.hostname, conv))
            chosen.append(h)
            window = shared
        # ready is never empty here (no cycles), and its first host always fits an empty wave.
        starts_at = next_opening(window, opens_after, options.wave_minutes)
        assert starts_at is not None and chosen
        names = tuple(sorted(h.hostname for h in chosen))
        waves.append(Wave(number=len(waves) + 1, hosts=names, conversion=tuple(sorted(conversion)),
                          window=describe(window), starts_at=starts_at))
        placed |= set(names)
        remaining -= set(names)
        opens_after = starts_at + dt.timedelta(minutes=options.wave_minutes)
    return tuple(waves)
