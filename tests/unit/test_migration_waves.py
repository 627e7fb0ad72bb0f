"""Wave planning, maintenance windows, flavor/security-group fit, inventory: table-driven."""
from __future__ import annotations

import datetime as dt

import pytest

from yunshang.errors import SurveyInvalid
from yunshang.migration.fit import (Flavor, QuotaNeed, SecurityGroup, SecurityRule, choose_security_groups,
                                    fit_flavor, quota_shortfalls, volume_gb_for)
from yunshang.migration.inventory import build_inventory
from yunshang.migration.plan import build_plan, plan_from_dict
from yunshang.migration.survey import Survey, survey_from_dicts
from yunshang.migration.waves import WaveOptions, find_cycles, plan_waves
from yunshang.migration.windows import describe, next_opening, parse_window

MON = dt.datetime(2026, 11, 23, 9, 0)  # a Monday


def survey(*specs: tuple) -> Survey:
    """specs: (hostname, depends_on list, window[, department])"""
    hosts = []
    for spec in specs:
        name, deps, window = spec[:3]
        dept = spec[3] if len(spec) > 3 else "health"
        hosts.append({"hostname": name, "address": "10.0.0.1", "os": "debian12", "vcpu": 1, "ram_gb": 1,
                      "disk_gb": 1, "business_system": "his", "department": dept, "depends_on": deps,
                      "maintenance_window": window, "operator": "telecom"})
    return survey_from_dicts(hosts, "s.yaml")


def waves_of(s: Survey, **opts) -> list[tuple[str, ...]]:
    return [w.hosts for w in plan_waves(s, WaveOptions(**opts), MON)]


WAVE_CASES = [
    # name, survey specs, options, expected waves
    ("independent hosts share a wave", [("a", [], "any"), ("b", [], "any"), ("c", [], "any")], {}, [("a", "b", "c")]),
    ("chain moves one per wave", [("a", [], "any"), ("b", ["a"], "any"), ("c", ["b"], "any")], {}, [("a",), ("b",), ("c",)]),
    ("diamond", [("db", [], "any"), ("app1", ["db"], "any"), ("app2", ["db"], "any"), ("lb", ["app1", "app2"], "any")], {},
     [("db",), ("app1", "app2"), ("lb",)]),
    ("per-wave cap", [(n, [], "any") for n in "abcde"], {"max_hosts_per_wave": 2}, [("a", "b"), ("c", "d"), ("e",)]),
    ("per-conversion-host cap", [(n, [], "any") for n in "abcde"],
     {"max_hosts_per_conversion_host": 2, "conversion_hosts": ("c1",)}, [("a", "b"), ("c", "d"), ("e",)]),
    ("two conversion hosts double the wave", [(n, [], "any") for n in "abcde"],
     {"max_hosts_per_conversion_host": 2, "conversion_hosts": ("c1", "c2")}, [("a", "b", "c", "d"), ("e",)]),
    ("long chains go first under a cap", [("x", [], "any"), ("a", [], "any"), ("b", ["a"], "any")],
     {"max_hosts_per_wave": 1}, [("a",), ("b",), ("x",)]),
    ("disjoint windows split a wave", [("a", [], "sat 01:00-05:00"), ("b", [], "sun 01:00-05:00"), ("c", [], "any")], {},
     [("a", "c"), ("b",)]),
    ("overlapping windows share", [("a", [], "daily 00:00-06:00"), ("b", [], "daily 04:00-08:00")], {"wave_minutes": 120},
     [("a", "b")]),
    ("overlap too short for a wave", [("a", [], "daily 00:00-05:00"), ("b", [], "daily 04:00-08:00")], {"wave_minutes": 120},
     [("a",), ("b",)]),
]


@pytest.mark.parametrize("name,specs,opts,expected", WAVE_CASES, ids=[c[0] for c in WAVE_CASES])
def test_waves(name, specs, opts, expected):
    assert waves_of(survey(*specs), **opts) == expected


def test_wave_dependencies_always_earlier_and_caps_hold():
    specs = [(f"h{i}", [f"h{j}" for j in range(i) if (i * 7 + j) % 5 == 0], "any") for i in range(20)]
    s = survey(*specs)
    waves = plan_waves(s, WaveOptions(max_hosts_per_wave=3, max_hosts_per_conversion_host=2,
                                      conversion_hosts=("c1", "c2")), MON)
    where = {h: w.number for w in waves for h in w.hosts}
    assert sorted(where) == sorted(h.hostname for h in s.hosts)
    for h in s.hosts:
        assert all(where[d] < where[h.hostname] for d in h.depends_on)
    for w in waves:
        assert len(w.hosts) <= 3
        for c in ("c1", "c2"):
            assert sum(1 for _, conv in w.conversion if conv == c) <= 2


def test_waves_are_scheduled_in_their_windows_one_after_another():
    s = survey(("a", [], "sat 22:00-04:00"), ("b", ["a"], "sat 22:00-04:00"))
    w1, w2 = plan_waves(s, WaveOptions(wave_minutes=120), MON)
    assert w1.starts_at == dt.datetime(2026, 11, 28, 22, 0)
    assert w2.starts_at == dt.datetime(2026, 11, 29, 0, 0)  # right after wave 1's two hours, still in the window
    assert w1.window == "sat 22:00-sun 04:00"


@pytest.mark.parametrize("specs,cycles", [
    ([("a", ["b"], "any"), ("b", ["a"], "any")], [("a", "b")]),
    ([("a", ["c"], "any"), ("b", ["a"], "any"), ("c", ["b"], "any"), ("d", [], "any")], [("a", "c", "b")]),
    ([("a", ["b"], "any"), ("b", ["a"], "any"), ("x", ["y"], "any"), ("y", ["x"], "any")], [("a", "b"), ("x", "y")]),
    ([("a", [], "any"), ("b", ["a"], "any")], []),
])
def test_cycles_found_and_reported(specs, cycles):
    s = survey(*specs)
    assert find_cycles(s.hosts) == cycles
    if cycles:
        with pytest.raises(SurveyInvalid) as ei:
            plan_waves(s, WaveOptions(), MON)
        msgs = [p.message for p in ei.value.problems]
        assert all(p.field == "depends_on" and p.line for p in ei.value.problems)
        assert msgs[0] == "dependency cycle: " + " -> ".join(cycles[0] + (cycles[0][0],))


def test_window_shorter_than_a_wave_is_a_problem():
    with pytest.raises(SurveyInvalid) as ei:
        plan_waves(survey(("a", [], "daily 01:00-01:30")), WaveOptions(wave_minutes=60), MON)
    assert ei.value.problems[0].field == "maintenance_window"


@pytest.mark.parametrize("spec,when,inside", [
    ("any", MON, True),
    ("weekdays 08:00-10:00", MON, True),
    ("weekends 08:00-10:00", MON, False),
    ("sun 23:00-01:00", dt.datetime(2026, 11, 23, 0, 30), True),   # wraps into Monday
    ("mon-wed 12:00-13:00", dt.datetime(2026, 11, 25, 12, 59), True),
    ("fri-mon 12:00-13:00", dt.datetime(2026, 11, 25, 12, 30), False),
    ("sat 00:00-24:00", dt.datetime(2026, 11, 28, 23, 59), True),
    ("mon 01:00-02:00; tue 03:00-04:00", dt.datetime(2026, 11, 24, 3, 30), True),
])
def test_windows_contain(spec, when, inside):
    assert parse_window(spec).contains(when) is inside


@pytest.mark.parametrize("spec,after,minutes,expected", [
    ("daily 01:00-05:00", MON, 60, dt.datetime(2026, 11, 24, 1, 0)),
    ("daily 01:00-05:00", dt.datetime(2026, 11, 24, 3, 30), 60, dt.datetime(2026, 11, 24, 3, 30)),
    ("daily 01:00-05:00", dt.datetime(2026, 11, 24, 4, 30), 60, dt.datetime(2026, 11, 25, 1, 0)),
    ("sun 23:00-02:00", dt.datetime(2026, 11, 23, 0, 30), 60, dt.datetime(2026, 11, 23, 0, 30)),  # inside the wrap
    ("sun 23:00-02:00", dt.datetime(2026, 11, 23, 1, 30), 60, dt.datetime(2026, 11, 29, 23, 0)),
    ("mon 09:00-09:30", MON, 60, None),
])
def test_next_opening(spec, after, minutes, expected):
    assert next_opening(parse_window(spec), after, minutes) == expected


def test_describe():
    assert describe(parse_window("any")) == "any"
    assert describe(parse_window("mon 01:00-05:00")) == "mon 01:00-05:00"
    assert describe(parse_window("sun 23:00-01:00")) == "sun 23:00-mon 01:00"


FLAVORS = [Flavor("m1.tiny", 1, 512, 1), Flavor("m1.small", 1, 2048, 20), Flavor("m1.medium", 2, 4096, 40),
           Flavor("m1.large", 4, 8192, 80), Flavor("c1.large", 8, 8192, 80)]


@pytest.mark.parametrize("vcpu,ram_gb,disk_gb,image_gb,expected", [
    (1, 0.5, 1, 0, "m1.tiny"),
    (1, 1, 1, 0, "m1.small"),
    (2, 4, 40, 0, "m1.medium"),
    (2, 4, 40, 41.2, "m1.large"),     # the image's virtual size decides
    (3, 1, 1, 0, "m1.large"),
    (8, 8, 80, 0, "c1.large"),
    (16, 8, 80, 0, None),
])
def test_fit_flavor(vcpu, ram_gb, disk_gb, image_gb, expected):
    h = survey_from_dicts([{"hostname": "a", "address": "10.0.0.1", "os": "x", "vcpu": vcpu, "ram_gb": ram_gb,
                            "disk_gb": disk_gb, "business_system": "b", "department": "d"}]).hosts[0]
    got = fit_flavor(h, FLAVORS, image_gb)
    assert (got.name if got else None) == expected


WEB = SecurityGroup("web", (SecurityRule("tcp", 80, 80), SecurityRule("tcp", 443, 443)))
SSH = SecurityGroup("ssh", (SecurityRule("tcp", 22, 22),))
WIDE = SecurityGroup("wide", (SecurityRule("tcp", 1, 1024),))
DEFAULT = SecurityGroup("default", (SecurityRule("any", None, None, "10.0.0.0/8"),))


@pytest.mark.parametrize("ports,groups,chosen,uncovered", [
    ([80, 22], [WEB, SSH], ("ssh", "web"), ()),
    ([80, 443, 22], [WEB, SSH, WIDE], ("wide",), ()),
    ([5432], [WEB, SSH], (), (5432,)),
    ([5432, 80], [DEFAULT], (), ()),
    ([], [WEB], (), ()),
])
def test_choose_security_groups(ports, groups, chosen, uncovered):
    assert choose_security_groups(ports, groups) == (chosen, uncovered)


def test_quota_and_volume_sizes():
    assert quota_shortfalls([QuotaNeed("cores", 4, 10, 6), QuotaNeed("ram", 4096, -1, 10**6),
                             QuotaNeed("instances", 2, 10, 9)]) == ["quota instances: need 2, in use 9 of 10"]
    assert volume_gb_for(0) == 1 and volume_gb_for(2**30) == 2 and volume_gb_for(8 * 2**30) == 10


def test_inventory_groups_and_plan_round_trip():
    s = survey(("db", [], "any", "health"), ("app", ["db"], "any", "health"), ("gw", [], "any", "public-security"))
    plan = build_plan(s, WaveOptions(conversion_hosts=("conv1",)), MON)
    inv = build_inventory(s, "/keys/id", plan)
    ch = inv["all"]["children"]
    assert set(ch) == {"department_health", "department_public_security", "wave_1", "wave_2"}
    assert set(ch["department_health"]["children"]["system_health__his"]["hosts"]) == {"db", "app"}
    v = ch["department_health"]["children"]["system_health__his"]["hosts"]["app"]
    assert v["ansible_ssh_private_key_file"] == "/keys/id" and v["migrate_conversion_host"] == "conv1"
    assert v["migrate_project"] == "dept-health" and v["migrate_operator"] == "telecom"
    assert set(ch["wave_1"]["hosts"]) == {"db", "gw"} and set(ch["wave_2"]["hosts"]) == {"app"}
    again = plan_from_dict(plan.to_dict())
    assert again == plan and again.plan_id == plan.plan_id
