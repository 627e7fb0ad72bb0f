"""Graded-protection checks over frozen tenant views (pure)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os

from yunshang import compliance as c
from yunshang.catalog import load_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAT = load_catalog(os.path.join(ROOT, "examples", "prefecture"))
DAY = dt.date(2026, 11, 26)
NOW = dt.datetime(2026, 11, 26, 1, tzinfo=dt.timezone.utc)


def view(dept="health", op="unicom", **kw):
    base = dict(
        department=dept, operator=op, project=f"dept-{dept}", project_id="p1",
        tags=("yunshang", f"department:{dept}", "contract:WJ-2025-01", "mlps:3"), read_at=NOW,
        rules=(c.RuleView.of("base", "ingress", "tcp", 22, 22, "10.250.0.0/24"),
               c.RuleView.of("web", "ingress", "tcp", 443, 443, "0.0.0.0/0")),
        ports=(c.PortView("1", "web-1", "compute:az1", ("web",), True),
               c.PortView("2", "", "network:dhcp", (), False)),
        volumes=(c.VolumeView("data-1", 100, False),),
        servers=(c.ServerView("web-1", "s1", (("create", "u1", "req-1"),)),))
    base.update(kw)
    return c.TenantView(**base)


def by_id(report, op="unicom"):
    return {r.id: r for r in report.results if r.operator == op}


def test_compliant_tenant_passes_everything_required():
    rep = c.check_department(CAT, "health", {"unicom": view(), "telecom": view(op="telecom", tags=(
        "yunshang", "department:health", "contract:WJ-2025-02", "mlps:3"))}, DAY, NOW)
    assert rep.compliant, [r.as_dict() for r in rep.failed]
    r = by_id(rep)
    assert r["volumes-encrypted"].status == c.NA            # unicom offers no volume encryption
    assert r["backup-dr-placement"].status == c.PASS and "telecom" in " ".join(r["backup-dr-placement"].found)


def test_world_open_ssh_any_port_and_missing_groups_fail_with_a_fix():
    bad = view(rules=(c.RuleView.of("base", "ingress", "tcp", 20, 25, "0.0.0.0/0"),
                      c.RuleView.of("all", "ingress", None, None, None, None),
                      c.RuleView.of("v6", "ingress", "tcp", 3389, 3389, "::/0", ethertype="IPv6"),
                      c.RuleView.of("grp", "ingress", "tcp", 22, 22, None, remote_group="g1")),
               ports=(c.PortView("1", "web-1", "compute:az1", (), True),
                      c.PortView("2", "web-2", "compute:az1", ("web",), False)))
    rep = c.check_department(CAT, "health", {"unicom": bad, "telecom": None}, DAY, NOW)
    r = by_id(rep)
    adm = r["no-world-open-admin-port"]
    assert adm.status == c.FAIL and len(adm.found) == 3 and "management CIDR" in adm.fix
    assert "reaches admin port(s) 22" in adm.found[0]
    ports = r["security-groups-on-ports"]
    assert ports.status == c.FAIL and ports.found == ("port web-1: no security group",
                                                      "port web-2: port security disabled")
    assert r["backup-dr-placement"].status == c.FAIL          # health has dr requests, no telecom tenant
    assert not rep.compliant and {x.id for x in rep.failed} == {"no-world-open-admin-port",
                                                               "security-groups-on-ports", "backup-dr-placement"}


def test_audit_trail_needs_tags_and_instance_actions():
    v = view(tags=("yunshang", "department:health"),
             servers=(c.ServerView("a", "1", ()), c.ServerView("b", "2", (("create", "", "req"),))))
    r = c.check_audit_trail(v, 3, ["WJ-2025-01"])
    assert r.status == c.FAIL
    text = " | ".join(r.found)
    assert "contract:<id>" in text and "mlps:<n>" in text and "server a: no 'create'" in text and "server b" in text


def test_encryption_required_where_the_operator_offers_it_and_certification():
    gov = CAT.provider("govcloud")
    v = view(op="govcloud", volumes=(c.VolumeView("a", 10, True), c.VolumeView("b", 10, False)))
    r = c.check_volumes(v, gov, 3)
    assert r.status == c.FAIL and r.found == ("volume b (10 GB) is not encrypted",)
    low = dataclasses.replace(CAT.provider("unicom"), mlps_level=2)
    assert c.check_operator_certified(CAT.department("health"), low).status == c.FAIL
    unicom = CAT.provider("unicom")
    assert c.check_operator_certified(CAT.department("health"), unicom, view()).status == c.PASS
    assert c.check_operator_certified(CAT.department("health"), unicom,
                                      view(tags=("mlps:4",))).status == c.FAIL     # a level-4 system placed there


def test_level_two_department_does_not_need_dr():
    d = next(d for d in CAT.departments if d.mlps_level == 2) if any(d.mlps_level == 2 for d in CAT.departments) \
        else dataclasses.replace(CAT.department("health"), mlps_level=2)
    r = c.check_backup_dr(d, DAY, "unicom", {}, d.mlps_level)
    assert r.status == c.NA
