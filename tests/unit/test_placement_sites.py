"""Placement rules 6 (residency) and 7 (budget): one table row per way of breaking each rule (the request
must be unplaced with the named reason and numbers) and its twin that keeps the rule (it must be placed)."""
from __future__ import annotations

import dataclasses

import pytest

from catalog_fixtures import DAY, catalog, contract, department, provider, request
from yunshang.model import Site, Zone
from yunshang.placement import place, plan_to_dict

SITES = (Site("yiyang", "city", "益阳市"),
         Site("taojiang", "county", "桃江县", "yiyang", budget_cny_per_month=300000),
         Site("anhua", "county", "安化县", "yiyang"),
         Site("fuqiushan", "township", "浮邱山乡", "taojiang"),
         Site("yiyang-east", "county", "东部新区", "yiyang"))


def at(p, *sites):
    """Provider ``p`` with its zones at ``sites`` (in zone order)."""
    return dataclasses.replace(p, zones=tuple(dataclasses.replace(z, site=s)
                                              for z, s in zip(p.zones, sites, strict=False)))


def dept(name, contracts, requests, site=""):
    return dataclasses.replace(department(name, contracts, requests), site=site)


def cat(providers, departments, sites=SITES):
    return dataclasses.replace(catalog(providers, departments), sites=sites)


def one_zone(name="telecom", vcpu=100, prices=(30, 10, 0.5, 25)):
    return provider(name, zones=(("az1", vcpu, 400, 10000),), prices=prices)


TEL = provider("telecom")                  # web small: 2 vCPU, 4 GB, 50 GB -> 125 CNY/month
C = [contract("C1", "telecom")]


def with_budget(sites, name, budget):
    return tuple(dataclasses.replace(s, budget_cny_per_month=budget) if s.name == name else s for s in sites)


# (broken catalog, twin that keeps the rule, reason in the broken one's unplaced reasons)
ROWS = {
    "residency-sideways-to-another-county": (
        cat([at(one_zone(), "yiyang-east")], [dept("d", C, [request("r")], "taojiang")]),
        cat([at(one_zone(), "taojiang")], [dept("d", C, [request("r")], "taojiang")]),
        "residency: zone az1 of telecom is at site yiyang-east, not taojiang or above"),
    "residency-down-from-the-city": (
        cat([at(one_zone(), "taojiang")], [dept("d", C, [request("r")], "yiyang")]),
        cat([at(one_zone(), "yiyang")], [dept("d", C, [request("r")], "yiyang")]),
        "residency: zone az1 of telecom is at site taojiang, not yiyang or above"),
    "residency-township-up-to-the-city-not-sideways": (
        cat([at(TEL, "anhua", "yiyang-east")], [dept("d", C, [request("r")], "fuqiushan")]),
        cat([at(TEL, "anhua", "yiyang")], [dept("d", C, [request("r")], "fuqiushan")]),
        "residency: zones of telecom are at sites az1 anhua, az2 yiyang-east, not fuqiushan or above"),
    "residency-default-site-is-the-root": (
        cat([at(one_zone(), "anhua")], [dept("d", C, [request("r")])]),
        cat([one_zone()], [dept("d", C, [request("r")])]),
        "residency: zone az1 of telecom is at site anhua, not yiyang or above"),
    "residency-standby-too": (   # the primary fits; the standby's only backup operator is at another county
        cat([at(one_zone(), "taojiang"), at(one_zone("unicom"), "anhua")],
            [dept("d", C + [contract("B1", "unicom", "backup")], [request("r", dr=True)], "taojiang")]),
        cat([at(one_zone(), "taojiang"), at(one_zone("unicom"), "yiyang")],
            [dept("d", C + [contract("B1", "unicom", "backup")], [request("r", dr=True)], "taojiang")]),
        "residency: zone az1 of unicom is at site anhua, not taojiang or above"),
    "residency-ha-counts-the-allowed-zones": (   # only az1 is allowed and it holds 1: 2 instances do not fit
        cat([at(provider("telecom", zones=(("az1", 2, 400, 10000), ("az2", 100, 400, 10000))), "taojiang", "anhua")],
            [dept("d", C, [request("r", 2, ha=True)], "taojiang")]),
        cat([at(provider("telecom", zones=(("az1", 4, 400, 10000), ("az2", 100, 400, 10000))), "taojiang", "anhua")],
            [dept("d", C, [request("r", 2, ha=True)], "taojiang")]),
        "residency: not az2"),
    "budget-own-site": (
        cat([TEL], [dept("d", C, [request("r", 2)], "taojiang")], with_budget(SITES, "taojiang", 249.5)),
        cat([TEL], [dept("d", C, [request("r", 2)], "taojiang")], with_budget(SITES, "taojiang", 250)),
        "budget: site taojiang 249.5 CNY/month: placing would make it 250"),
    "budget-counts-the-sites-below": (   # the township's department spends under its county's budget
        cat([TEL], [dept("d", C, [request("r", 2)], "fuqiushan")], with_budget(SITES, "taojiang", 200)),
        cat([TEL], [dept("d", C, [request("r", 2)], "anhua")], with_budget(SITES, "taojiang", 200)),
        "budget: site taojiang 200 CNY/month: placing would make it 250"),
    "budget-of-the-root-covers-everything": (
        cat([TEL], [dept("d", C, [request("r", 2)], "anhua")], with_budget(SITES, "yiyang", 100)),
        cat([TEL], [dept("d", C, [request("r", 2)], "anhua")], with_budget(SITES, "yiyang", 1000)),
        "budget: site yiyang 100 CNY/month: placing would make it 250"),
    "budget-shared-by-departments": (   # the first department's 250 leaves 50 of 300 for the second
        cat([TEL], [dept("a", C, [request("big", 2)], "taojiang"),
                    dept("d", [contract("C2", "telecom")], [request("r", 2)], "fuqiushan")],
            with_budget(SITES, "taojiang", 300)),
        cat([TEL], [dept("a", C, [request("big", 2)], "taojiang"),
                    dept("d", [contract("C2", "telecom")], [request("r", 2)], "fuqiushan")],
            with_budget(SITES, "taojiang", 500)),
        "CNY/month: placing would make it 500"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_each_site_rule(name):
    broken, ok, reason = ROWS[name]
    plan = place(broken, DAY)
    roles = {(u.department, u.request, u.role): u.reasons for u in plan.unplaced}
    assert roles, plan
    assert any(reason in " | ".join(rs) for rs in roles.values()), roles
    good = place(ok, DAY)
    assert not good.unplaced, good.unplaced
    assert len(good.placements) == len(plan.placements) + len(plan.unplaced)


def test_without_sites_everything_is_as_before():
    plain = catalog([TEL], [department("d", C, [request("r", 3, ha=True)])])
    with_root = cat([at(TEL, "yiyang", "yiyang")], [dept("d", C, [request("r", 3, ha=True)], "yiyang")],
                    sites=(Site("yiyang", "city"),))
    a, b = place(plain, DAY), place(with_root, DAY)
    assert [(p.zones, p.monthly_cost_cny) for p in a.placements] == [(p.zones, p.monthly_cost_cny)
                                                                       for p in b.placements]
    assert a.placements[0].site == "root" and b.placements[0].site == "yiyang"


def test_residency_keeps_the_cheaper_county_zone_and_reports_the_site():
    # the county's own zone (taojiang) and the city's: a township department may use both, ha over both
    cat_ = cat([at(TEL, "taojiang", "yiyang")], [dept("d", C, [request("r", 4, ha=True)], "fuqiushan")])
    plan = place(cat_, DAY)
    [p] = plan.placements
    assert dict(p.zones) == {"az1": 2, "az2": 2} and p.sites == ("taojiang", "yiyang")
    assert plan_to_dict(plan)["placements"][0]["site"] == "taojiang,yiyang"
    # a department of another county gets only the city's zone: no ha spread possible there, all in az2
    other = cat([at(TEL, "taojiang", "yiyang")], [dept("d", C, [request("r", 4, ha=True)], "anhua")])
    [q] = place(other, DAY).placements
    assert q.zones == (("az2", 4),) and q.site == "yiyang"


def test_zone_objects_default_to_the_root_site():
    assert Zone("az1", 1, 1, 1).site == ""
