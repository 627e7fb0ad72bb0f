"""The one normal form of a security-group rule. Pure.

Used by the tenant spec (what yunshang builds), both engines' read-back (drift), and
``compliance check`` (what is found on a live tenant), so a rule means the same thing
everywhere:

* protocol: ``None`` = any (also ``""``, ``"any"``, Neutron's null); numbers are IANA
  protocol numbers and become their names where Neutron has one (``"6"`` -> ``tcp``,
  ``17`` -> ``udp``, ``1`` -> ``icmp``, ``58`` -> ``ipv6-icmp``); ``icmp``/``icmpv6``/
  ``ipv6-icmp`` on an IPv6 rule are all ``ipv6-icmp``; other numbers stay as digits;
* ports: only for port protocols (tcp, udp, sctp, udplite, dccp); a single port is
  ``min == max``; 1-65535 (or none) is ``None``/``None`` = any; ICMP type/code dropped;
* remote: a remote group (``remote_group``) or a CIDR; no remote at all = the world of the
  rule's ethertype (``0.0.0.0/0`` or ``::/0``); CIDRs in canonical form; the ethertype
  follows the remote CIDR's IP version;
* ``world_open``: from 0.0.0.0/0 or ::/0 (any prefix length 0), not from a group.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

ADMIN_PORTS = (22, 3389, 5900, 6443)
WORLD = "0.0.0.0/0"
WORLD6 = "::/0"
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
ICMP_NAMES = frozenset({"icmp", "icmpv6", "ipv6-icmp"})
# IANA numbers Neutron also accepts by name (neutron-lib constants.IP_PROTOCOL_MAP)
PROTOCOL_NAMES = {"1": "icmp", "2": "igmp", "4": "ipip", "6": "tcp", "17": "udp", "33": "dccp", "41": "ipv6-encap",
                  "43": "ipv6-route", "44": "ipv6-frag", "47": "gre", "50": "esp", "51": "ah", "58": "ipv6-icmp",
                  "59": "ipv6-nonxt", "60": "ipv6-opts", "103": "pim", "112": "vrrp", "132": "sctp",
                  "136": "udplite"}


class RuleInvalid(ValueError):
    """A rule that has no normal form (a bad CIDR, ports out of range)."""


@dataclass(frozen=True)
class RuleSpec:
    """A security-group rule in normal form (see the module docstring)."""

    direction: str               # ingress | egress
    protocol: str | None         # tcp | udp | icmp | ipv6-icmp | <name or number> | None (any)
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None      # None only when remote_group is set
    ethertype: str = "IPv4"
    description: str = field(default="", compare=False)
    remote_group: str | None = None

    def key(self) -> tuple:
        """Identity for drift comparison (description ignored)."""
        return (self.direction, self.ethertype, self.protocol, self.port_min, self.port_max, self.remote_cidr,
                self.remote_group)

    def sort_key(self) -> tuple:
        return (self.direction, self.ethertype, self.protocol or "", -1 if self.port_min is None else self.port_min,
                -1 if self.port_max is None else self.port_max, self.remote_cidr or "", self.remote_group or "")

    def covers_port(self, port: int) -> bool:
        """Does this rule let TCP ``port`` through?"""
        if self.protocol not in (None, "tcp"):
            return False
        if self.port_min is None:
            return True
        return self.port_min <= port <= (self.port_max if self.port_max is not None else self.port_min)

    @property
    def world_open(self) -> bool:
        if self.remote_group is not None or self.remote_cidr is None:
            return False
        return ipaddress.ip_network(self.remote_cidr).prefixlen == 0

    def admin_ports_reached(self, ports: Iterable[int] = ADMIN_PORTS) -> tuple[int, ...]:
        return tuple(p for p in ports if self.covers_port(p))

    @property
    def ports_text(self) -> str:
        if self.port_min is None:
            return "any"
        return str(self.port_min) if self.port_min == self.port_max else f"{self.port_min}-{self.port_max}"

    @property
    def remote_text(self) -> str:
        return f"group {self.remote_group}" if self.remote_group is not None else str(self.remote_cidr)


def normal_protocol(protocol, ethertype: str = "IPv4") -> str | None:
    """The protocol's normal name (None = any)."""
    if protocol is None:
        return None
    p = str(protocol).strip().lower()
    if p in ("", "any"):
        return None
    p = PROTOCOL_NAMES.get(p.lstrip("0") or "0", p) if p.isdigit() else p
    if p in ICMP_NAMES:
        return "ipv6-icmp" if ethertype == "IPv6" else "icmp"
    return p


def normalise_rule(direction: str, protocol, port_min: int | None, port_max: int | None,
                   remote_cidr: str | None, ethertype: str | None = "IPv4", description: str = "",
                   remote_group: str | None = None) -> RuleSpec:
    """The one normal form (see the module docstring). Raises RuleInvalid on what has none."""
    remote: str | None = None
    if remote_group in ("",):
        remote_group = None
    if remote_group is None:
        if remote_cidr in (None, ""):
            remote = WORLD6 if ethertype == "IPv6" else WORLD
        else:
            try:
                net = ipaddress.ip_network(str(remote_cidr).strip(), strict=False)
            except ValueError:
                raise RuleInvalid(f"remote {remote_cidr!r} is not a CIDR") from None
            remote = str(net)
            ethertype = "IPv6" if net.version == 6 else "IPv4"
    ether = ethertype or "IPv4"
    proto = normal_protocol(protocol, ether)
    if proto not in PORT_PROTOCOLS:
        port_min = port_max = None
    pmin = None if port_min is None else int(port_min)
    pmax = None if port_max is None else int(port_max)
    if pmin is not None and pmax is None:
        pmax = pmin
    if pmin is None and pmax is not None:
        pmin = pmax
    if pmin is not None and pmax is not None:
        if not (0 <= pmin <= 65535 and 0 <= pmax <= 65535) or pmin > pmax:
            raise RuleInvalid(f"ports {pmin}-{pmax}: expected 1 <= min <= max <= 65535")
        if pmin <= 1 and pmax == 65535:
            pmin = pmax = None
    return RuleSpec(direction, proto, pmin, pmax, remote, ether, description, remote_group)


def neutron_rule(r: dict, group_names: dict[str, str] | None = None) -> RuleSpec:
    """A rule as Neutron returns it (a dict of the API's fields), in normal form."""
    rg = r.get("remote_group_id")
    return normalise_rule(r.get("direction", ""), r.get("protocol"), r.get("port_range_min"),
                          r.get("port_range_max"), r.get("remote_ip_prefix"), r.get("ethertype") or "IPv4",
                          r.get("description") or "", (group_names or {}).get(rg, rg) if rg else None)


def sort_rules(rules: Iterable[RuleSpec]) -> tuple[RuleSpec, ...]:
    """Deduplicated (description ignored: the first kept) and in a stable order."""
    seen: dict[tuple, RuleSpec] = {}
    for r in rules:
        seen.setdefault(r.key(), r)
    return tuple(sorted(seen.values(), key=RuleSpec.sort_key))


def fmt_rule(r: RuleSpec) -> str:
    return f"{r.direction} {r.protocol or 'any'}/{r.ports_text} {r.remote_text}"


def rule_label(group: str, r: RuleSpec) -> str:
    """A stable, readable identity of a rule inside its group (also the Pulumi logical name)."""
    remote = f"group_{r.remote_group}" if r.remote_group is not None else str(r.remote_cidr).replace("/", "_")
    return f"{group}.{r.direction}.{r.ethertype.lower()}.{r.protocol or 'any'}.{r.ports_text}.{remote}"
