"""Graded-protection (MLPS) checks over a frozen view of a live tenant. Pure.

``yunshang.openstack.compliance`` reads each department's project on each
operator into a ``TenantView``; ``check_department`` decides. Every result
says what was checked, against which level, what was found and how to fix it,
so the report can be filed as evidence.

The checks (and the level from which each one is required):

========================  =====  ==============================================================
id                        level  passes when
========================  =====  ==============================================================
operator-certified        1      the operator's certified MLPS level >= the department's level
no-world-open-admin-port  2      no ingress rule from 0.0.0.0/0 or ::/0 reaches 22, 3389, 5900, 6443
security-groups-on-ports  2      every server port has port security on and >= 1 security group
audit-trail               2      the project carries the yunshang accountability tags
                                 (department, contract, mlps) and every server has a Nova
                                 instance-action record naming the user and request that created it
backup-dr-placement       3      a backup contract with ANOTHER operator is valid today, and where the
                                 department has ``dr`` requests its tenant exists on that operator
volumes-encrypted         1      where the operator offers volume encryption (Provider.volume_encryption):
                                 every volume is encrypted; otherwise not applicable
========================  =====  ==============================================================

"Audit logging on" is defined by what any center can read through the
operators' public APIs: Nova's instance-action log (who did what to each
server, with request ids) and Keystone's project tags tying each project to a
department, contract and level. Service-side notification settings are not
readable through the APIs and are outside this check (see docs/lifecycle.md).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Sequence

from yunshang.capacity import CONTRACT_TAG_PREFIX, DEPARTMENT_TAG_PREFIX, MLPS_TAG_PREFIX, PROJECT_TAG
from yunshang.secrules import ADMIN_PORTS, RuleSpec, fmt_rule, normalise_rule  # noqa: F401 - ADMIN_PORTS re-exported

PASS, FAIL, NA = "pass", "fail", "not-applicable"


# --------------------------------------------------------------------------- the view (read from a cloud)
@dataclass(frozen=True)
class RuleView:
    """A rule found in a group, in the one normal form the tenant spec uses (``yunshang.secrules``)."""

    group: str
    rule: RuleSpec

    @classmethod
    def of(cls, group: str, direction: str, protocol, port_min: int | None, port_max: int | None,
           remote_cidr: str | None, remote_group: str | None = None, ethertype: str = "IPv4") -> "RuleView":
        return cls(group, normalise_rule(direction, protocol, port_min, port_max, remote_cidr, ethertype,
                                         remote_group=remote_group))

    @property
    def direction(self) -> str:
        return self.rule.direction


@dataclass(frozen=True)
class PortView:
    id: str
    name: str
    device_owner: str
    security_groups: tuple[str, ...]
    port_security_enabled: bool

    @property
    def is_server_port(self) -> bool:
        return self.device_owner.startswith("compute:") or self.device_owner == ""


@dataclass(frozen=True)
class VolumeView:
    name: str
    size_gb: int
    encrypted: bool


@dataclass(frozen=True)
class ServerView:
    name: str
    id: str
    actions: tuple[tuple[str, str, str], ...]     # (action, user_id, request_id) from os-instance-actions


@dataclass(frozen=True)
class TenantView:
    department: str
    operator: str
    project: str
    project_id: str
    tags: tuple[str, ...]
    read_at: dt.datetime
    rules: tuple[RuleView, ...] = ()
    ports: tuple[PortView, ...] = ()
    volumes: tuple[VolumeView, ...] = ()
    servers: tuple[ServerView, ...] = ()


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    department: str
    operator: str
    required_from_level: int
    status: str                  # pass | fail | not-applicable
    found: tuple[str, ...]       # what was seen (evidence)
    fix: str = ""                # how to fix when failed

    def as_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "department": self.department, "operator": self.operator,
                "required_from_level": self.required_from_level, "status": self.status,
                "found": list(self.found), "fix": self.fix if self.status == FAIL else ""}


@dataclass(frozen=True)
class Report:
    checked_at: dt.datetime
    department: str
    mlps_level: int
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == FAIL)

    @property
    def compliant(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {"department": self.department, "mlps_level": self.mlps_level,
                "checked_at": self.checked_at.isoformat(), "compliant": self.compliant,
                "results": [r.as_dict() for r in self.results]}


def _result(cid, title, dept, op, level, required, failures, passes, fix) -> CheckResult:
    if level < required:
        return CheckResult(cid, title, dept, op, required, NA, (f"level {level} < {required}: not required",), fix)
    return CheckResult(cid, title, dept, op, required, FAIL if failures else PASS,
                       tuple(failures) if failures else tuple(passes), fix)


# --------------------------------------------------------------------------- checks
def tenant_level(view: "TenantView | None", default: int) -> int:
    """The level the tenant is tagged with (``mlps:<n>``: its highest placed system), at least ``default``."""
    levels = [int(t[len(MLPS_TAG_PREFIX):]) for t in (view.tags if view else ())
              if t.startswith(MLPS_TAG_PREFIX) and t[len(MLPS_TAG_PREFIX):].isdigit()]
    return max([default] + levels)


def check_operator_certified(dept, provider, view: "TenantView | None" = None) -> CheckResult:
    lvl = tenant_level(view, dept.mlps_level)
    ok = provider.mlps_level >= lvl
    return CheckResult("operator-certified", "Operator certified at the system's protection level", dept.name,
                       provider.name, 1, PASS if ok else FAIL,
                       (f"operator {provider.name} certified at level {provider.mlps_level}; level of "
                        f"{dept.name}'s tenant there: {lvl}",),
                       f"move the level-{lvl} systems to an operator certified at level >= {lvl}")


def check_admin_ports(view: TenantView, level: int) -> CheckResult:
    bad = [f"group {v.group}: {fmt_rule(v.rule)} reaches admin port(s) "
           f"{', '.join(str(p) for p in v.rule.admin_ports_reached())}"
           for v in view.rules if v.rule.direction == "ingress" and v.rule.world_open and v.rule.admin_ports_reached()]
    return _result("no-world-open-admin-port", "No admin port (22/3389/5900/6443) open to the world", view.department,
                   view.operator, level, 2, bad,
                   [f"{sum(1 for r in view.rules if r.direction == 'ingress')} ingress rules in "
                    f"{len({r.group for r in view.rules})} groups; none world-open on an admin port"],
                   "restrict the rule's remote to the center's management CIDR (bastion hosts), "
                   "then `yunshang tenant apply` re-converges the baseline")


def check_ports(view: TenantView, level: int) -> CheckResult:
    server_ports = [p for p in view.ports if p.is_server_port]
    bad = []
    for p in server_ports:
        if not p.port_security_enabled:
            bad.append(f"port {p.name or p.id}: port security disabled")
        elif not p.security_groups:
            bad.append(f"port {p.name or p.id}: no security group")
    return _result("security-groups-on-ports", "Security groups on every server port", view.department,
                   view.operator, level, 2, bad, [f"{len(server_ports)} server ports, each with port security and "
                                                  f">= 1 security group"],
                   "enable port security and attach the tenant's baseline group: "
                   "openstack port set --enable-port-security --security-group <group> <port>")


def check_audit_trail(view: TenantView, level: int, contracts: Sequence[str]) -> CheckResult:
    bad = []
    tags = set(view.tags)
    need = {PROJECT_TAG, f"{DEPARTMENT_TAG_PREFIX}{view.department}"}
    for t in sorted(need - tags):
        bad.append(f"project {view.project}: tag {t!r} missing")
    levels = [int(t[len(MLPS_TAG_PREFIX):]) for t in tags
              if t.startswith(MLPS_TAG_PREFIX) and t[len(MLPS_TAG_PREFIX):].isdigit()]
    if not levels or max(levels) < level:
        bad.append(f"project {view.project}: no {MLPS_TAG_PREFIX}<n> tag with n >= {level}")
    if not any(t.startswith(CONTRACT_TAG_PREFIX) and t[len(CONTRACT_TAG_PREFIX):] in contracts for t in tags):
        bad.append(f"project {view.project}: no contract:<id> tag naming a contract with {view.operator} "
                   f"({', '.join(contracts) or 'none valid'})")
    for s in view.servers:
        create = [a for a in s.actions if a[0] == "create"]
        if not create:
            bad.append(f"server {s.name}: no 'create' entry in Nova's instance-action log")
        elif not all(a[1] and a[2] for a in create):
            bad.append(f"server {s.name}: instance-action entry lacks user or request id")
    return _result("audit-trail", "Security audit and accountability trail", view.department, view.operator, level,
                   2, bad, [f"project tags {sorted(tags)}", f"{len(view.servers)} servers, each with a Nova "
                                                            f"instance-action record (user, request id)"],
                   "tag the project (`yunshang tenant apply` sets the tags) and keep Nova's instance-action "
                   "log (do not purge `instance_actions` for live servers)")


def check_backup_dr(dept, day: dt.date, primary_operator: str, views_by_operator: dict, level: int) -> CheckResult:
    backups = [c for c in dept.contracts if c.role == "backup" and c.valid_on(day) and c.provider != primary_operator]
    bad, good = [], []
    if not backups:
        bad.append(f"no backup contract valid on {day.isoformat()} with an operator other than {primary_operator}")
    else:
        good.append("backup contract(s): " + ", ".join(f"{c.id} ({c.provider})" for c in backups))
        if any(r.dr for r in dept.requests):
            present = [c.provider for c in backups if views_by_operator.get(c.provider) is not None]
            if not present:
                bad.append(f"{dept.name} has dr requests but no tenant on its backup operator(s) "
                           f"{', '.join(sorted({c.provider for c in backups}))}")
            else:
                good.append(f"standby tenant present on {', '.join(sorted(present))}")
    return _result("backup-dr-placement", "Backup / DR placement on another operator", dept.name, primary_operator,
                   level, 3, bad, good,
                   "sign a backup contract with a second qualified operator and apply the standby tenant there "
                   "(`yunshang request configure` places `dr: true` requests on it)")


def check_volumes(view: TenantView, provider, level: int) -> CheckResult:
    if not provider.volume_encryption:
        return CheckResult("volumes-encrypted", "Data volumes encrypted", view.department, view.operator, 1, NA,
                           (f"operator {provider.name} offers no volume encryption (catalog)",), "")
    bad = [f"volume {v.name} ({v.size_gb} GB) is not encrypted" for v in view.volumes if not v.encrypted]
    return _result("volumes-encrypted", "Data volumes encrypted", view.department, view.operator, level, 1, bad,
                   [f"{len(view.volumes)} volumes, all encrypted"],
                   "re-create the volume with the operator's encrypted volume type and copy the data over")


def check_department(catalog, department: str, views: dict[str, TenantView | None], day: dt.date,
                     checked_at: dt.datetime) -> Report:
    """All checks for one department over its tenants on every operator (``views[op]`` None = no tenant)."""
    dept = catalog.department(department)
    level = dept.mlps_level
    results: list[CheckResult] = []
    primaries = sorted({c.provider for c in dept.contracts if c.role == "primary" and c.valid_on(day)})
    for op, view in sorted(views.items()):
        if view is None:
            continue
        prov = catalog.provider(op)
        contracts = [c.id for c in dept.contracts if c.provider == op and c.valid_on(day)]
        results.append(check_operator_certified(dept, prov, view))
        results.append(check_admin_ports(view, level))
        results.append(check_ports(view, level))
        results.append(check_audit_trail(view, level, contracts))
        results.append(check_volumes(view, prov, level))
    for op in primaries:
        results.append(check_backup_dr(dept, day, op, views, level))
    return Report(checked_at, department, level, tuple(results))


from yunshang.errors import YunshangError  # noqa: E402


class NotCompliant(YunshangError):
    """At least one required check failed (the report says which and how to fix it)."""

    exit_code = 1
