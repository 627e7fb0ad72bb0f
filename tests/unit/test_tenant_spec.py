"""The pure tenant spec: naming, tags, quotas with headroom, CIDRs, MLPS baselines, templates."""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_tenant_fixtures as fx  # noqa: E402

from yunshang.errors import NotFound, TemplateRenderError  # noqa: E402
from yunshang.model import Rule  # noqa: E402
from yunshang.tenant import (ADMIN_PORTS, CidrConflict, NoValidContract, baseline_rules, headroom,  # noqa: E402
                             normalise_rule, template_rules, tenant_spec, tenant_specs, world_open_admin_rules)


@pytest.fixture()
def cat():
    return fx.catalog()


@pytest.fixture()
def spec(cat):
    return tenant_spec(cat, fx.plan(cat), "health", "telecom")


def test_project_named_and_tagged(spec):
    assert spec.project.name == "dept-health"
    assert spec.project.tags == ("yunshang", "department:health", "contract:HE-0", "mlps:3")
    assert spec.cloud == "telecom" and spec.stack_name == "health.telecom"


def test_same_input_same_spec(cat):
    assert tenant_spec(cat, fx.plan(cat), "health", "telecom") == tenant_spec(cat, fx.plan(cat), "health", "telecom")


def test_users_and_roles_from_catalog(spec):
    assert [u.name for u in spec.users] == ["health.boss", "health.ops"]
    assert {(a.user, a.role) for a in spec.role_assignments} == {("health.boss", "admin"), ("health.ops", "member")}


def test_servers_follow_placement_zones(spec):
    got = {(s.name, s.availability_zone, s.role) for s in spec.servers}
    assert got == {("health-portal-01", "az1", "primary"), ("health-portal-02", "az2", "primary"),
                   ("health-db-01", "az1", "primary")}
    assert spec.need_by_zone() == {"az1": {"vcpu": 2, "ram_gb": 3, "disk_gb": 3},
                                   "az2": {"vcpu": 1, "ram_gb": 1, "disk_gb": 1}}


def test_standby_copies_on_backup_operator(cat):
    s = tenant_spec(cat, fx.plan(cat), "health", "unicom")
    assert [x.name for x in s.servers] == ["health-portal-sb-01", "health-portal-sb-02"]
    assert all(x.role == "standby" for x in s.servers)
    assert s.contracts == ("HE-1",)


def test_ha_gets_anti_affinity_group_non_ha_none(spec):
    assert [(g.name, g.policy) for g in spec.server_groups] == [("health-portal-aa", "soft-anti-affinity")]
    by = {s.name: s.server_group for s in spec.servers}
    assert by["health-portal-01"] == by["health-portal-02"] == "health-portal-aa"
    assert by["health-db-01"] is None


def test_volumes_and_floating_ips_per_server(spec):
    assert [(v.name, v.size_gb, v.server) for v in spec.volumes] == [
        ("health-portal-01-logs", 1, "health-portal-01"), ("health-portal-02-logs", 1, "health-portal-02")]
    assert [(f.name, f.server, f.pool) for f in spec.floating_ips] == [
        ("health-portal-01-fip1", "health-portal-01", "public"), ("health-portal-02-fip1", "health-portal-02", "public")]


@pytest.mark.parametrize("need,quota", [(0, 0), (1, 2), (3, 4), (4, 5), (8, 10), (100, 125)])
def test_headroom_rule(need, quota):
    assert headroom(need) == quota


def test_quotas_sized_from_what_is_placed(spec):
    q = spec.quotas.as_dict()
    assert q["compute"] == {"instances": headroom(3), "cores": headroom(3), "ram": headroom(4 * 1024),
                            "server_groups": headroom(1), "server_group_members": headroom(2)}
    assert q["volume"] == {"volumes": headroom(2), "gigabytes": headroom(2)}
    assert q["network"]["floatingip"] == headroom(2)
    assert q["network"]["port"] == headroom(3 + 2)
    rules = sum(len(g.rules) + 2 for g in spec.security_groups) + 4
    assert q["network"]["security_group_rule"] == headroom(rules)


def test_user_data_rendered_per_server(spec):
    s = {x.name: x for x in spec.servers}["health-portal-02"]
    assert "hostname: health-portal-02" in s.user_data and '"health az2 2"' in s.user_data


def test_bad_template_variable_names_file_and_line():
    ud = "#cloud-config\nhostname: {{ instance }}\nruncmd:\n  - [echo, {{ no_such_variable }}]\n"
    cat = fx.catalog(tpl=fx.templates(user_data=ud))
    with pytest.raises(TemplateRenderError) as e:
        tenant_spec(cat, fx.plan(cat), "health", "telecom")
    # user_data block starts after line 6 of the file; the bad line is its 4th -> line 10
    assert "templates/web.yaml:10" in str(e.value)
    assert "no_such_variable" in str(e.value)
    assert fx.web_source(ud).splitlines()[9].strip().startswith("- [echo, {{ no_such_variable")


def test_template_syntax_error_names_line():
    ud = "#cloud-config\nhostname: {{ instance \n"
    cat = fx.catalog(tpl=fx.templates(user_data=ud))
    with pytest.raises(TemplateRenderError, match=r"templates/web.yaml:\d+: user_data: syntax error"):
        tenant_spec(cat, fx.plan(cat), "health", "telecom")


def test_unknown_department_and_operator(cat):
    with pytest.raises(NotFound, match="unknown department 'nope'"):
        tenant_spec(cat, fx.plan(cat), "nope", "telecom")
    with pytest.raises(NotFound, match="unknown operator 'mobile'"):
        tenant_spec(cat, fx.plan(cat), "health", "mobile")


def test_no_valid_contract(cat):
    with pytest.raises(NoValidContract, match="health holds no contract with operator govcloud"):
        tenant_spec(cat, fx.plan(cat), "health", "govcloud")
    late = fx.plan(cat, dt.date(2029, 6, 1))
    with pytest.raises(NoValidContract, match="valid on 2029-06-01"):
        tenant_spec(cat, late, "health", "telecom")


def test_no_two_tenants_share_a_cidr():
    depts = [fx.department(n) for n in ("health", "tourism", "education", "finance", "justice", "transport")]
    depts.append(fx.department("police", 7))
    cat = fx.catalog(departments=depts)
    specs = tenant_specs(cat, fx.plan(cat))
    nets = [ipaddress.ip_network(s.network.cidr) for s in specs]
    assert len(specs) == 2 * len(depts)
    for a, b in itertools.combinations(nets, 2):
        assert not a.overlaps(b), (a, b)
    mgmt = ipaddress.ip_network("10.250.0.0/24")
    assert not any(n.overlaps(mgmt) for n in nets)


def test_duplicate_cidr_index_refused():
    cat = fx.catalog(departments=(fx.department("health", 5), fx.department("tourism", 5)))
    with pytest.raises(CidrConflict, match="share CIDR block 5"):
        tenant_spec(cat, fx.plan(cat), "health", "telecom")


def test_cidr_stable_when_departments_are_added():
    small = fx.catalog(departments=(fx.department("health"), fx.department("tourism")))
    big = fx.catalog(departments=(fx.department("aaa"), fx.department("health"), fx.department("tourism")))
    a = tenant_spec(small, fx.plan(small), "health", "telecom").network.cidr
    b = tenant_spec(big, fx.plan(big), "health", "telecom").network.cidr
    assert a == b


# --------------------------------------------------------------------------- MLPS baselines
def test_mlps3_no_world_open_admin_port(spec):
    assert spec.mlps_level == 3
    assert world_open_admin_rules(spec) == []
    for g in spec.security_groups:
        for r in g.rules:
            if r.direction == "ingress" and any(r.covers_port(p) for p in ADMIN_PORTS):
                assert ipaddress.ip_network(r.remote_cidr).subnet_of(ipaddress.ip_network("10.250.0.0/24")) \
                    or r.remote_cidr == spec.network.cidr, (g.name, r)
    assert any("admin ports 22 cut out" in n for n in spec.notes)


def test_mlps3_world_any_rule_is_split_around_admin_ports():
    r = fx.templates()["db"]
    rules, notes = template_rules(r, 3, "10.250.0.0/24")
    tcp = sorted((x.port_min, x.port_max) for x in rules if x.protocol == "tcp")
    assert tcp == [(1, 21), (23, 3388), (3390, 5899), (5901, 6442), (6444, 65535)]
    assert {x.protocol for x in rules} == {"tcp", "udp", "icmp"}
    assert notes


def test_mlps3_egress_only_what_template_says(spec):
    web = {g.name: g for g in spec.security_groups}["dept-health-web"]
    base = {g.name: g for g in spec.security_groups}["dept-health-baseline"]
    egress = [r for g in (web, base) for r in g.rules if r.direction == "egress"]
    assert {(r.protocol, r.port_min, r.remote_cidr) for r in egress} == {
        ("tcp", 443, "0.0.0.0/0"), (None, None, spec.network.cidr), (None, None, "10.250.0.0/24")}


def test_mlps2_baseline_egress_any_icmp_world_admin_still_restricted():
    rules = baseline_rules(2, "10.0.16.0/24", "10.250.0.0/24")
    assert normalise_rule("egress", None, None, None, "0.0.0.0/0") in rules
    assert normalise_rule("ingress", "icmp", None, None, "0.0.0.0/0") in rules
    tpl_rules, _ = template_rules(fx.templates()["web"], 2, "10.250.0.0/24")
    assert not any(r.remote_cidr == "0.0.0.0/0" and r.covers_port(22) for r in tpl_rules)


def test_mlps4_drops_world_ingress():
    rules, notes = template_rules(fx.templates()["web"], 4, "10.250.0.0/24")
    assert not any(r.direction == "ingress" and r.remote_cidr == "0.0.0.0/0" for r in rules)
    assert any("MLPS 4" in n for n in notes)


def test_sample_like_mlps3_template_rules_kept_when_inside_management():
    t = dataclasses.replace(fx.templates()["web"], ingress=(Rule("tcp", 22, 22, "10.250.0.0/24"),))
    rules, notes = template_rules(t, 3, "10.250.0.0/24")
    assert normalise_rule("ingress", "tcp", 22, 22, "10.250.0.0/24") in rules and not notes


@pytest.mark.parametrize("given,expected", [
    (("ingress", "tcp", 1, 65535, "0.0.0.0/0"), ("ingress", "tcp", None, None, "0.0.0.0/0")),
    (("ingress", "any", None, None, None), ("ingress", None, None, None, "0.0.0.0/0")),
    (("ingress", "icmp", 8, 0, "10.0.0.1/8"), ("ingress", "icmp", None, None, "10.0.0.0/8")),
    (("egress", "udp", 53, None, "10.250.2.0/24"), ("egress", "udp", 53, 53, "10.250.2.0/24")),
])
def test_rule_normalisation(given, expected):
    r = normalise_rule(*given)
    assert (r.direction, r.protocol, r.port_min, r.port_max, r.remote_cidr) == expected
