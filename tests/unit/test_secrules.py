"""The one normal form of a security-group rule (yunshang.secrules), shared by the tenant spec,
the SDK engine's read-back and `compliance check`: both sides must agree on IPv6 ::/0, numeric
protocols and port ranges."""
from __future__ import annotations

import datetime as dt

import pytest

from yunshang import compliance as c
from yunshang.model import Rule, Template
from yunshang.secrules import RuleInvalid, neutron_rule, normalise_rule, rule_label
from yunshang.tenant import template_rules, world_open_admin_rules


@pytest.mark.parametrize("given,expected", [
    # numeric protocols (Neutron accepts IANA numbers and returns them as given)
    (("ingress", "6", 22, 22, "10.0.0.0/8"), ("tcp", 22, 22, "10.0.0.0/8", "IPv4")),
    (("ingress", 17, 53, None, "10.0.0.0/8"), ("udp", 53, 53, "10.0.0.0/8", "IPv4")),
    (("ingress", "1", 8, 0, None), ("icmp", None, None, "0.0.0.0/0", "IPv4")),
    (("ingress", "47", None, None, None), ("gre", None, None, "0.0.0.0/0", "IPv4")),
    (("ingress", "253", None, None, None), ("253", None, None, "0.0.0.0/0", "IPv4")),
    (("ingress", "TCP", 1, 65535, None), ("tcp", None, None, "0.0.0.0/0", "IPv4")),
    # IPv6: the world is ::/0, the ethertype follows the remote, ICMP spellings agree
    (("ingress", "tcp", 22, 22, "::/0", "IPv4"), ("tcp", 22, 22, "::/0", "IPv6")),
    (("ingress", "tcp", 22, 22, None, "IPv6"), ("tcp", 22, 22, "::/0", "IPv6")),
    (("ingress", "icmp", None, None, "2001:db8::1/64"), ("ipv6-icmp", None, None, "2001:db8::/64", "IPv6")),
    (("ingress", "58", None, None, "::/0"), ("ipv6-icmp", None, None, "::/0", "IPv6")),
    (("ingress", "icmpv6", None, None, "::/0"), ("ipv6-icmp", None, None, "::/0", "IPv6")),
    # port ranges
    (("ingress", "tcp", 8000, 8080, "10.0.0.0/8"), ("tcp", 8000, 8080, "10.0.0.0/8", "IPv4")),
    (("ingress", "tcp", None, 443, "10.0.0.0/8"), ("tcp", 443, 443, "10.0.0.0/8", "IPv4")),
    (("ingress", None, 22, 22, "10.0.0.0/8"), (None, None, None, "10.0.0.0/8", "IPv4")),
])
def test_normal_form(given, expected):
    r = normalise_rule(*given)
    assert (r.protocol, r.port_min, r.port_max, r.remote_cidr, r.ethertype) == expected


@pytest.mark.parametrize("bad", [(100, 90), (0, 70000), (-1, 5)])
def test_bad_ports_refused(bad):
    with pytest.raises(RuleInvalid):
        normalise_rule("ingress", "tcp", *bad, "10.0.0.0/8")


def test_numeric_and_named_rules_are_the_same_rule():
    a = neutron_rule({"direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": 22,
                      "remote_ip_prefix": "0.0.0.0/0", "ethertype": "IPv4"})
    b = normalise_rule("ingress", "tcp", 22, 22, "0.0.0.0/0")
    assert a == b and rule_label("g", a) == rule_label("g", b) == "g.ingress.ipv4.tcp.22.0.0.0.0_0"


def test_remote_group_is_not_the_world():
    r = neutron_rule({"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                      "remote_ip_prefix": None, "remote_group_id": "g-id", "ethertype": "IPv4"}, {"g-id": "web"})
    assert r.remote_cidr is None and r.remote_group == "web" and not r.world_open
    assert rule_label("x", r).endswith(".group_web")


VARIANTS = [  # the same world-open SSH, spelt the ways Neutron can hold it
    ("tcp", 22, 22, "0.0.0.0/0", "IPv4"), ("6", 22, 22, "0.0.0.0/0", "IPv4"), ("tcp", 22, 22, None, "IPv4"),
    ("tcp", 22, 22, "::/0", "IPv6"), ("6", 20, 30, "::/0", "IPv6"), (None, None, None, "::/0", "IPv6"),
    ("tcp", 1, 65535, None, "IPv6"),
]


@pytest.mark.parametrize("proto,pmin,pmax,remote,ether", VARIANTS)
def test_tenant_and_compliance_agree_world_open_ssh(proto, pmin, pmax, remote, ether):
    rule = normalise_rule("ingress", proto, pmin, pmax, remote, ether)
    assert rule.world_open and 22 in rule.admin_ports_reached()
    # compliance check fails it ...
    view = c.TenantView("d", "op", "dept-d", "p", (), dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
                        rules=(c.RuleView.of("g", "ingress", proto, pmin, pmax, remote, ethertype=ether),))
    assert c.check_admin_ports(view, 3).status == c.FAIL
    # ... and the tenant spec cuts it out of a template at MLPS 2 and 3
    world = "::/0" if ether == "IPv6" else "0.0.0.0/0"
    tpl = Template(name="t", file="t.yaml", sizes={}, ingress=(Rule(proto or "any", pmin, pmax, remote or world),))
    for level in (2, 3):
        rules, notes = template_rules(tpl, level, "10.250.0.0/24")
        assert notes and not any(r.world_open and r.admin_ports_reached() for r in rules), (level, rules)


def test_numeric_protocol_not_reaching_admin_ports_passes_both():
    rule = normalise_rule("ingress", "17", 22, 22, "::/0")          # udp/22: not an SSH port
    assert rule.world_open and not rule.admin_ports_reached()
    view = c.TenantView("d", "op", "dept-d", "p", (), dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
                        rules=(c.RuleView.of("g", "ingress", "17", 22, 22, "::/0"),))
    assert c.check_admin_ports(view, 3).status == c.PASS


def test_world_open_admin_rules_sees_ipv6():
    from types import SimpleNamespace

    g = SimpleNamespace(name="g", rules=(normalise_rule("ingress", "tcp", 3389, 3389, "::/0"),))
    assert [n for n, _ in world_open_admin_rules(SimpleNamespace(security_groups=(g,)))] == ["g"]


def test_ipv6_any_split_keeps_the_ipv6_icmp_spelling():
    tpl = Template(name="t", file="t.yaml", sizes={}, ingress=(Rule("any", None, None, "::/0"),))
    rules, _ = template_rules(tpl, 3, "10.250.0.0/24")
    assert {r.protocol for r in rules} == {"udp", "ipv6-icmp", "tcp"} and {r.ethertype for r in rules} == {"IPv6"}
    assert not any(r.admin_ports_reached() for r in rules)
