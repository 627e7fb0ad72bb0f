"""Placement pinned to exact numbers: hand-built contention cases where each pass of the algorithm
changes the result, the hard rules at their boundaries, the plan's totals against known values, and
tiny catalogs against an exhaustive optimum. Written against mutation testing (docs/testing.md)."""
from __future__ import annotations

import random

import pytest

from catalog_fixtures import DAY, catalog, contract, department, provider, request, template
from placement_bruteforce import optimum
from test_placement_properties import check_plan
from yunshang.model import Size, Usage
from yunshang.placement import peak_utilization_ratio, place, place_explained, plan_to_dict

TEL = provider("telecom")                               # prices 30 / 10 / 0.5 / 25; 2 zones of 100/400/10000
SMALL = 2 * 30 + 4 * 10 + 50 * 0.5                      # 125 CNY per instance of web/small, no floating IP


def _where(plan):
    return {(p.department, p.request, p.role): (p.provider, dict(p.zones), p.monthly_cost_cny)
            for p in plan.placements}


def _unplaced(plan):
    return {(u.department, u.request, u.role): " | ".join(u.reasons) for u in plan.unplaced}


# --------------------------------------------------------------------------- hard rules at the edge
def test_live_disk_and_ram_usage_are_subtracted_to_the_exact_fit():
    one = provider("telecom", zones=(("az1", 100, 400, 100),))
    cat = catalog([one], [department("d", [contract("C1", "telecom")], [request("r")])])     # 2/4/50
    assert _where(place(cat, DAY, (Usage("telecom", "az1", disk_gb=50),))) == {
        ("d", "r", "primary"): ("telecom", {"az1": 1}, SMALL)}
    full = place(cat, DAY, (Usage("telecom", "az1", disk_gb=51),))
    assert "disk_gb free 49 of 100" in _unplaced(full)[("d", "r", "primary")]
    assert place(cat, DAY, (Usage("telecom", "az1", ram_gb=396),)).placements
    assert "ram_gb free 3 of 400" in _unplaced(place(cat, DAY, (Usage("telecom", "az1", ram_gb=397),)))[
        ("d", "r", "primary")]
    # usage of a zone or operator the catalog does not have changes nothing
    assert place(cat, DAY, (Usage("telecom", "az9", disk_gb=99), Usage("mobile", "az1", vcpu=99))).placements


def test_capacity_with_a_fractional_overcommit_fits_exactly():
    # 100 x 0.57 is 56.99999999999999 in floating point: 57 one-vCPU instances must still fit
    p = provider("telecom", zones=(("az1", 100, 1000, 100000),), overcommit=0.57)
    tpl = template("web", {"one": Size(1, 1, 1)})
    fits = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 57, size="one")])], [tpl])
    assert dict(place(fits, DAY).placements[0].zones) == {"az1": 57}
    over = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 58, size="one")])], [tpl])
    assert place(over, DAY).placements == ()


def test_ha_with_exactly_two_instances_uses_two_zones():
    # az2 is busier, so without ha both instances go to az1; with ha one goes to each zone
    usage = (Usage("telecom", "az2", vcpu=50),)
    ha = catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", 2, ha=True)])])
    plain = catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", 2)])])
    assert dict(place(ha, DAY, usage).placements[0].zones) == {"az1": 1, "az2": 1}
    assert dict(place(plain, DAY, usage).placements[0].zones) == {"az1": 2}
    # one instance with ha, or ha on a one-zone operator: no spread to make
    one = catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r", 1, ha=True)])])
    assert dict(place(one, DAY, usage).placements[0].zones) == {"az1": 1}
    single = provider("telecom", zones=(("az1", 100, 400, 10000),))
    cat = catalog([single], [department("d", [contract("C1", "telecom")], [request("r", 3, ha=True)])])
    assert dict(place(cat, DAY).placements[0].zones) == {"az1": 3}


def test_ha_over_three_zones_allows_ceil_count_over_zones_each():
    p = provider("telecom", zones=(("az1", 100, 400, 10000), ("az2", 100, 400, 10000), ("az3", 4, 400, 10000)))
    cat = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 5, ha=True)])])
    # az3 holds 2 of the 2-vCPU instances: 2 + 2 + 1 keeps ceil(5/3) = 2 per zone
    assert dict(place(cat, DAY).placements[0].zones) == {"az1": 2, "az2": 2, "az3": 1}
    tight = provider("telecom", zones=(("az1", 100, 400, 10000), ("az2", 2, 400, 10000), ("az3", 2, 400, 10000)))
    cat = catalog([tight], [department("d", [contract("C1", "telecom")], [request("r", 5, ha=True)])])
    plan = place(cat, DAY)
    assert plan.placements == () and "ha: at most 2 per zone" in _unplaced(plan)[("d", "r", "primary")]
    two = catalog([tight], [department("d", [contract("C1", "telecom")], [request("r", 2, ha=True)])])
    assert "ha: at most 1 per zone" not in " ".join(_unplaced(place(two, DAY)).values())


def test_ceiling_exact_fit_with_two_roles_under_one_contract():
    cat = catalog([TEL], [department("d", [contract("C1", "telecom", ceiling=2 * SMALL)],
                                     [request("a"), request("b")])])
    assert len(place(cat, DAY).placements) == 2
    cat = catalog([TEL], [department("d", [contract("C1", "telecom", ceiling=2 * SMALL - 0.01)],
                                     [request("a"), request("b")])])
    plan = place(cat, DAY)
    assert len(plan.placements) == 1
    [reason] = _unplaced(plan).values()
    assert "ceiling 249.99 CNY/month: placing would make it 250" in reason


def test_the_repair_pass_never_places_a_role_over_its_ceiling():
    # telecom has room for one instance. dq can only use telecom, under a ceiling too low for it;
    # moving dp to unicom would make room, but placing dq there breaks dq's ceiling: dp stays put.
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", prices=(60, 20, 1, 50))
    cat = catalog([tel, uni], [
        department("dp", [contract("PA", "telecom"), contract("PB", "unicom")], [request("p")]),
        department("dq", [contract("QA", "telecom", ceiling=SMALL - 1)], [request("q")])])
    plan = place(cat, DAY)
    assert _where(plan) == {("dp", "p", "primary"): ("telecom", {"az1": 1}, SMALL)}
    assert "ceiling: contract QA ceiling 124 CNY/month: placing would make it 125" in _unplaced(plan)[
        ("dq", "q", "primary")]
    assert check_plan(cat, DAY, (), plan) == []


def test_the_repair_pass_moves_a_role_only_to_an_option_with_room():
    # as in test_placement's repair case, but unicom is full too: nothing moves, dq stays out
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", zones=(("az1", 1, 400, 10000),), prices=(60, 20, 1, 50))
    cat = catalog([tel, uni], [
        department("dp", [contract("PA", "telecom"), contract("PB", "unicom")], [request("p")]),
        department("dq", [contract("QA", "telecom"), contract("QB", "unicom", ceiling=1)], [request("q")])])
    plan = place(cat, DAY)
    assert _where(plan) == {("dp", "p", "primary"): ("telecom", {"az1": 1}, SMALL)}
    assert set(_unplaced(plan)) == {("dq", "q", "primary")}


# --------------------------------------------------------------------------- passes that change a result
def test_the_largest_regret_goes_first():
    # telecom has room for one instance. 'aa' loses 10 CNY if sent to unicom, 'zz' 100 if sent to
    # mobile: 'zz' gets telecom although 'aa' comes first by name.
    tel = provider("telecom", zones=(("az1", 2, 400, 10000),))
    uni = provider("unicom", prices=(35, 10, 0.5, 25))             # 135
    mob = provider("mobile", prices=(80, 10, 0.5, 25))             # 225
    cat = catalog([tel, uni, mob], [
        department("aa", [contract("A1", "telecom"), contract("A2", "unicom")], [request("r")]),
        department("zz", [contract("Z1", "telecom"), contract("Z2", "mobile")], [request("r")])])
    assert _where(place(cat, DAY)) == {("aa", "r", "primary"): ("unicom", {"az1": 1}, 135.0),
                                       ("zz", "r", "primary"): ("telecom", {"az1": 1}, SMALL)}


def test_the_second_small_first_run_places_more_when_room_binds():
    # 8 vCPUs: the dearest role first (6 vCPUs) leaves no room for either 4-vCPU role;
    # the smallest first places both of them.
    one = provider("telecom", zones=(("az1", 8, 400, 10000),))
    tpl = template("web", {"big": Size(6, 6, 60), "small": Size(4, 4, 40)})
    cat = catalog([one], [department("d", [contract("C1", "telecom")],
                                     [request("big", size="big"), request("s1", size="small"),
                                      request("s2", size="small")])], [tpl])
    plan = place(cat, DAY)
    assert _where(plan) == {("d", "s1", "primary"): ("telecom", {"az1": 1}, 180.0),
                            ("d", "s2", "primary"): ("telecom", {"az1": 1}, 180.0)}
    assert "vcpu free 0 of 8" in _unplaced(plan)[("d", "big", "primary")]


def test_the_second_run_wins_on_cost_when_both_place_as_many():
    # one role fits either way (ha needs both zones for 'large'; 'small' blocks one of them):
    # the first run places the dear 'large' (432), the small-first run the cheap 'small' (113).
    p0 = provider("p0", zones=(("az1", 12, 8, 200), ("az2", 4, 64, 100)), prices=(31, 4, 0.5, 10))
    tpl = template("web", {"small": Size(2, 4, 50), "large": Size(4, 8, 100)}, floating_ips=1)
    cat = catalog([p0], [department("d", [contract("C", "p0", ceiling=800)],
                                    [request("small"), request("large", 2, size="large", ha=True)])], [tpl])
    plan = place(cat, DAY)
    assert [(p.request, p.monthly_cost_cny) for p in plan.placements] == [("small", 113.0)]
    assert plan.total_monthly_cost_cny == 113.0


def test_the_improvement_pass_moves_a_role_back_to_a_cheaper_zone_freed_later():
    # p1 is the only operator the dr primary can pair with (the backup contract is on p0).
    # r1 (small) first takes p0/az2; the standby then fits nowhere, so the repair pass moves r1 to
    # p1 (89) and puts the standby on p0/az2. p0/az1 has had room for r1 all along: the improvement
    # pass moves it back to p0 (71). Total 168 + 132 + 71 = 371 (389 without the improvement).
    p0 = provider("p0", zones=(("az1", 2, 64, 1000), ("az2", 4, 16, 1000)), dedicated=True, prices=(16, 1, 0.5, 10))
    p1 = provider("p1", zones=(("az1", 6, 16, 1000), ("az2", 2, 8, 200)), dedicated=True, prices=(5, 11, 0.5, 10))
    tpl = template("web", {"small": Size(2, 4, 50), "large": Size(4, 8, 100)}, floating_ips=1)
    cat = catalog([p0, p1], [department("d", [contract("B", "p0", "backup", ceiling=300), contract("A", "p0"),
                                              contract("C", "p1", ceiling=2000)],
                                        [request("r0", size="large", level=2, dr=True), request("r1", level=2)])],
                  [tpl])
    plan = place(cat, DAY)
    assert _where(plan) == {("d", "r0", "primary"): ("p1", {"az1": 1}, 168.0),
                            ("d", "r0", "standby"): ("p0", {"az2": 1}, 132.0),
                            ("d", "r1", "primary"): ("p0", {"az1": 1}, 71.0)}
    assert plan.total_monthly_cost_cny == 371.0
    assert optimum(cat, DAY) == (3, 371.0)


def test_the_ceiling_knapsack_keeps_the_set_with_the_most_roles():
    # ceiling 400 on the only primary contract; q and r are dr pairs (standbys under unicom's backup
    # contract). Cheapest per role first would keep p + q (3 roles); the exact choice is q + r (4 roles).
    uni = provider("unicom")
    tpl = template("web", {"p": Size(2, 3, 0), "pair": Size(2, 4, 0)})          # 90 and 100 per instance
    cat = catalog([TEL, uni], [department("d", [contract("C", "telecom", ceiling=400),
                                                contract("B", "unicom", "backup")],
                                          [request("p", size="p"), request("q", 2, size="pair", dr=True),
                                           request("r", 2, size="pair", dr=True)])], [tpl])
    plan = place(cat, DAY)
    assert sorted(_where(plan)) == [("d", "q", "primary"), ("d", "q", "standby"),
                                    ("d", "r", "primary"), ("d", "r", "standby")]
    assert "placing would make it 490" in _unplaced(plan)[("d", "p", "primary")]
    assert plan.total_monthly_cost_cny == 800.0


def test_a_standby_that_cannot_follow_is_not_counted_in_the_ceiling_knapsack():
    # The only backup contract is on the primary's only operator: 'pair' can never place its standby,
    # so it is worth one role like 'solo', and 'solo' is cheaper (125 against 250).
    cat = catalog([TEL], [department("d", [contract("C", "telecom", ceiling=300), contract("B", "telecom", "backup")],
                                     [request("pair", 2, dr=True), request("solo")])])
    plan = place(cat, DAY)
    assert [(p.request, p.role, p.monthly_cost_cny) for p in plan.placements] == [("solo", "primary", SMALL)]
    assert optimum(cat, DAY) == (1, SMALL)


def test_deferred_roles_take_what_is_left_in_the_end():
    # ceiling 300: 'a' and 'b' (125 each) are kept, 'big' (250) deferred; 'big' still cannot fit after
    cat = catalog([TEL], [department("d", [contract("C", "telecom", ceiling=300)],
                                     [request("big", 2), request("a"), request("b")])])
    plan = place(cat, DAY)
    assert sorted(p.request for p in plan.placements) == ["a", "b"]
    assert "placing would make it 500" in _unplaced(plan)[("d", "big", "primary")]


# --------------------------------------------------------------------------- zones and totals
def test_water_filling_over_unequal_zones():
    p = provider("telecom", zones=(("az1", 10, 400, 10000), ("az2", 20, 400, 10000), ("az3", 40, 400, 10000)))
    cat = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 7)])])
    # 2 vCPU each: the zones reach the same vCPU share at 1 : 2 : 4 instances
    assert dict(place(cat, DAY).placements[0].zones) == {"az1": 1, "az2": 2, "az3": 4}
    one = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 1)])])
    assert dict(place(one, DAY).placements[0].zones) == {"az3": 1}
    busy = (Usage("telecom", "az3", vcpu=36),)                       # az3 at 90 %
    assert dict(place(one, DAY, busy).placements[0].zones) == {"az2": 1}


def test_placement_totals_and_utilisation_are_known_numbers():
    p = provider("telecom", zones=(("zb", 40, 160, 2000), ("za", 20, 80, 1000)))
    tpl = template("web", {"m": Size(4, 8, 100)}, floating_ips=2)
    cat = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", 3, size="m", ha=True)])], [tpl])
    plan = place(cat, DAY, (Usage("telecom", "za", vcpu=2, ram_gb=4, disk_gb=100),))
    [pl] = plan.placements
    assert pl.zones == (("za", 1), ("zb", 2))                         # sorted by zone name
    assert (pl.vcpu, pl.ram_gb, pl.disk_gb, pl.floating_ips) == (12, 24, 300, 6)
    assert pl.monthly_cost_cny == 3 * (4 * 30 + 8 * 10 + 100 * 0.5 + 2 * 25) == 900.0
    util = {u.zone: (u.vcpu_ratio, u.ram_gb_ratio, u.disk_gb_ratio) for u in plan.utilization}
    assert util == {"zb": (0.2, 0.1, 0.1), "za": (0.3, 0.15, 0.2)}
    assert peak_utilization_ratio(plan) == 0.3
    d = plan_to_dict(plan)
    assert d["placements"] == [{"department": "d", "request": "r", "role": "primary", "provider": "telecom",
                                "contract": "C1", "zones": {"za": 1, "zb": 2}, "vcpu": 12, "ram_gb": 24,
                                "disk_gb": 300, "monthly_cost_cny": 900.0, "site": "root"}]
    assert d["utilization"][1] == {"provider": "telecom", "zone": "za", "vcpu_ratio": 0.3, "ram_gb_ratio": 0.15,
                                   "disk_gb_ratio": 0.2}
    assert d["total_monthly_cost_cny"] == 900.0 and d["unplaced"] == []


def test_utilisation_of_a_zone_without_capacity():
    p = provider("telecom", zones=(("az1", 10, 40, 0), ("az2", 10, 40, 0)))
    tpl = template("web", {"nodisk": Size(2, 4, 0)})
    cat = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", size="nodisk")])], [tpl])
    plan = place(cat, DAY, (Usage("telecom", "az2", disk_gb=5),))
    util = {u.zone: (u.vcpu_ratio, u.ram_gb_ratio, u.disk_gb_ratio) for u in plan.utilization}
    assert util == {"az1": (0.2, 0.1, 0.0), "az2": (0.0, 0.0, 1.0)}
    assert peak_utilization_ratio(plan) == 1.0
    assert peak_utilization_ratio(place(catalog([p], []), DAY)) == 0.0


# --------------------------------------------------------------------------- decisions
def test_decisions_say_why_in_each_case():
    uni = provider("unicom", zones=(("az1", 2, 400, 10000),), prices=(1, 1, 0.1, 1))     # 11 per small
    cat = catalog([TEL, uni], [department("d", [contract("A", "telecom"), contract("B", "unicom")],
                                          [request("x"), request("y")]),
                               department("e", [contract("E", "telecom"), contract("X", "unicom", "backup")],
                                          [request("z", level=4)])])
    plan, decisions = place_explained(cat, DAY)
    why = {(d.department, d.request): (d.chosen, d.why) for d in decisions}
    assert why[("d", "x")] == ("unicom", "cheapest allowed operator (11 CNY/month; telecom 125)")
    assert why[("d", "y")][0] == "telecom"
    assert why[("d", "y")][1].startswith("cheaper operator not possible: capacity on unicom") and \
        why[("d", "y")][1].endswith("(125 CNY/month; unicom 11)")
    assert why[("e", "z")] == ("", "mlps: telecom certified level 3 < required 4")
    only = catalog([TEL, uni], [department("d", [contract("A", "telecom"), contract("X", "unicom", "backup")],
                                           [request("r")])])
    [dec] = place_explained(only, DAY)[1]
    assert (dec.chosen, dec.why) == ("telecom", "only allowed operator (125 CNY/month)")
    assert place(cat, DAY) == plan


# --------------------------------------------------------------------------- tiny catalogs, exhaustively
def _tiny(rng):
    names = ["p0", "p1", "p2"][:rng.randint(2, 3)]
    provs = [provider(n, tuple((f"az{j + 1}", rng.choice([2, 4, 6, 8, 12]), rng.choice([8, 16, 64]),
                                rng.choice([100, 200, 1000])) for j in range(rng.randint(1, 2))),
                      mlps=rng.randint(2, 4), dedicated=rng.random() < 0.3,
                      prices=(rng.randint(1, 40), rng.randint(1, 12), 0.5, 10)) for n in names]
    depts, nroles = [], 0
    for d in range(rng.randint(1, 2)):
        cons = [contract(f"d{d}c{c}", rng.choice(names), rng.choice(["primary", "primary", "backup"]),
                         ceiling=rng.choice([300, 800, 2000, 1e9])) for c in range(rng.randint(1, 3))]
        reqs = []
        for r in range(rng.randint(1, 3)):
            if nroles >= 4:
                break
            dr = rng.random() < 0.3
            nroles += 1 + dr
            reqs.append(request(f"r{r}", rng.randint(1, 3), size=rng.choice(["small", "large"]),
                                level=rng.randint(2, 3), ha=rng.random() < 0.4, dr=dr))
        depts.append(department(f"d{d}", cons, reqs))
    usage = tuple(Usage(p.name, z.name, vcpu=rng.choice([0, 2]), disk_gb=rng.choice([0, 50]))
                  for p in provs for z in p.zones if rng.random() < 0.3)
    return catalog(provs, depts, [template("web", {"small": Size(2, 4, 50), "large": Size(4, 8, 100)}, 1)]), usage


def test_tiny_catalogs_against_the_exhaustive_optimum():
    """Never better than the optimum (that would break a rule), and close to it: on 300 seeded tiny
    catalogs (<= 4 roles) the most roles every time but a few, the least cost nearly always."""
    rng = random.Random(2026)
    fewer = dearer = 0
    for _ in range(300):
        cat, usage = _tiny(rng)
        plan = place(cat, DAY, usage)
        assert check_plan(cat, DAY, usage, plan) == []
        n, cost = optimum(cat, DAY, usage)
        got = (len(plan.placements), plan.total_monthly_cost_cny)
        assert got[0] <= n and (got[0] < n or got[1] >= cost - 0.01), (got, (n, cost))
        fewer += got[0] < n
        dearer += got[0] == n and got[1] > cost + 0.01
    assert fewer <= 3 and dearer <= 9, (fewer, dearer)


@pytest.mark.parametrize("case", ["capacity", "ceiling", "ha", "standby"])
def test_bruteforce_itself_respects_each_rule(case):
    """The exhaustive search must refuse what the rules refuse (else the comparison proves nothing)."""
    one = provider("telecom", zones=(("az1", 4, 400, 10000), ("az2", 4, 400, 10000)))
    reqs = {"capacity": [request("r", 5)], "ceiling": [request("r", 1)], "ha": [request("r", 3, ha=True)],
            "standby": [request("r", 1, dr=True)]}[case]
    ceiling = SMALL - 1 if case == "ceiling" else 1e9
    usage = (Usage("telecom", "az2", vcpu=4),) if case == "ha" else ()
    cat = catalog([one], [department("d", [contract("C", "telecom", ceiling=ceiling),
                                           contract("B", "telecom", "backup")], reqs)])
    assert optimum(cat, DAY, usage)[0] == (1 if case == "standby" else 0)


def test_a_zone_full_in_a_resource_of_capacity_one_is_the_busier():
    # disk capacity 1 GB in both zones, az1's already used; instances need no disk: az2 is emptier
    p = provider("telecom", zones=(("az1", 100, 400, 1), ("az2", 100, 400, 1)))
    tpl = template("web", {"nodisk": Size(2, 4, 0)})
    cat = catalog([p], [department("d", [contract("C1", "telecom")], [request("r", size="nodisk")])], [tpl])
    assert dict(place(cat, DAY, (Usage("telecom", "az1", disk_gb=1),)).placements[0].zones) == {"az2": 1}
    assert dict(place(cat, DAY, (Usage("telecom", "az2", disk_gb=1),)).placements[0].zones) == {"az1": 1}


def test_decisions_are_frozen():
    import dataclasses

    [dec] = place_explained(catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r")])]), DAY)[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        dec.chosen = "x"


def test_place_restores_the_cycle_collector():
    import gc

    cat = catalog([TEL], [department("d", [contract("C1", "telecom")], [request("r")])])
    assert gc.isenabled()
    place(cat, DAY)
    assert gc.isenabled()
    gc.disable()
    try:
        place(cat, DAY)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_same_reason_twice_is_given_once():
    cat = catalog([TEL], [department("d", [contract("C1", "telecom"), contract("C2", "telecom")],
                                     [request("r", level=4)])])
    [u] = place(cat, DAY).unplaced
    assert u.reasons == ("mlps: telecom certified level 3 < required 4",)
