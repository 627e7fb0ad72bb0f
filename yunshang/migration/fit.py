"""Destination fit (pure): flavor for a host, security groups for its services, quota for a wave."""
from __future__ import annotations

import math
from dataclasses import dataclass

from yunshang.migration.survey import SurveyHost


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int                 # root disk; 0 = boots from volume (never chosen here)


@dataclass(frozen=True)
class SecurityRule:
    protocol: str                # tcp | udp | icmp | any
    port_min: int | None         # None = any port
    port_max: int | None
    remote_cidr: str = "0.0.0.0/0"


@dataclass(frozen=True)
class SecurityGroup:
    name: str
    ingress: tuple[SecurityRule, ...]


def fit_flavor(host: SurveyHost, flavors: tuple[Flavor, ...] | list[Flavor], image_gb: float = 0.0) -> Flavor | None:
    """The smallest flavor with at least the host's vCPU, RAM and disk (and the image's virtual size).

    "Smallest" orders by vCPU, then RAM, then disk, then name: the operator bills
    by those, in that order of weight. None when nothing fits.
    """
    need_disk = max(host.disk_gb, math.ceil(image_gb))
    fits = [f for f in flavors
            if f.vcpus >= host.vcpu and f.ram_mb >= host.ram_gb * 1024 and f.disk_gb >= need_disk]
    return min(fits, key=lambda f: (f.vcpus, f.ram_mb, f.disk_gb, f.name), default=None)


def rule_allows(rule: SecurityRule, port: int, protocol: str = "tcp") -> bool:
    if rule.protocol not in ("any", protocol):
        return False
    if rule.port_min is None and rule.port_max is None:
        return True
    lo = rule.port_min if rule.port_min is not None else 1
    hi = rule.port_max if rule.port_max is not None else 65535
    return lo <= port <= hi


def choose_security_groups(ports: tuple[int, ...] | list[int], groups: tuple[SecurityGroup, ...] | list[SecurityGroup]
                           ) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Groups to attach so every service port is allowed in, and the ports no group allows.

    Greedy set cover: repeatedly take the group allowing most still-uncovered
    ports (ties by name). ``default`` is always attached by Nova and counted.
    """
    uncovered = set(ports)
    chosen: list[str] = []
    by_name = {g.name: g for g in groups}
    if "default" in by_name:
        uncovered -= {p for p in uncovered if any(rule_allows(r, p) for r in by_name["default"].ingress)}
    candidates = [g for g in groups if g.name != "default"]
    while uncovered:
        best = max(candidates, default=None,
                   key=lambda g: (len({p for p in uncovered if any(rule_allows(r, p) for r in g.ingress)}),
                                  [-ord(c) for c in g.name]))
        if best is None:
            break
        got = {p for p in uncovered if any(rule_allows(r, p) for r in best.ingress)}
        if not got:
            break
        chosen.append(best.name)
        candidates.remove(best)
        uncovered -= got
    return tuple(sorted(chosen)), tuple(sorted(uncovered))


@dataclass(frozen=True)
class QuotaNeed:
    resource: str                # cores | ram | instances | gigabytes | volumes | images
    need: int
    limit: int                   # -1 = unlimited
    in_use: int

    @property
    def fits(self) -> bool:
        return self.limit < 0 or self.in_use + self.need <= self.limit


def quota_shortfalls(needs: list[QuotaNeed]) -> list[str]:
    """One line per resource whose quota would be exceeded."""
    return [f"quota {q.resource}: need {q.need}, in use {q.in_use} of {q.limit}" for q in needs if not q.fits]


def volume_gb_for(data_bytes: int) -> int:
    """Size of the data volume for ``data_bytes`` of data: +25% headroom, at least 1 GiB."""
    return max(1, math.ceil(data_bytes * 1.25 / 2**30))
