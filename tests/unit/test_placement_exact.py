"""Placement pinned where the earlier tests left a pass or a rule free (mutation survivors, docs/testing.md):
the site-budget knapsack and the standby's share of a budget, the knapsack's fallback for very large
groups, which run wins a tie, the repair pass's bounds, the improvement pass's order, the standby
reasons merged after the greedy, the water-filling's levels and ties, and the capacity message's counts.
Each case is built by hand so that the rule or pass under test changes the plan; the expected values
are worked out in the comments."""
from __future__ import annotations

import dataclasses

from catalog_fixtures import DAY, catalog, contract, department, provider, request, template
from placement_bruteforce import optimum
from yunshang.model import Site, Size, Usage
from yunshang.placement import KNAPSACK_MAX_ROLES, REPAIR_TRIES_PER_ROLE, place

TEL = provider("telecom")                               # prices 30 / 10 / 0.5 / 25; 2 zones of 100/400/10000
SMALL = 2 * 30 + 4 * 10 + 50 * 0.5                      # 125 CNY per instance of web/small


def _where(plan):
    return {(p.department, p.request, p.role): (p.provider, dict(p.zones), p.monthly_cost_cny)
            for p in plan.placements}


def _unplaced(plan):
    return {(u.department, u.request, u.role): u.reasons for u in plan.unplaced}


def one_zone(name, vcpu=100, ram=400, disk=10000, prices=(30, 10, 0.5, 25)):
    return provider(name, zones=(("az1", vcpu, ram, disk),), prices=prices)


# --------------------------------------------------------------------------- capacity message, water-filling
def test_the_capacity_message_counts_exact_fits_per_zone():
    # az1: 7 vCPUs, 1 used -> 6 free = exactly 3 small (2-vCPU) instances; az2: 5 free -> 2. Six with ha
    # over two zones may put 3 per zone: 3 + 2 < 6, unplaced; four fit as 2 + 2.
    p = provider("telecom", zones=(("az1", 7, 400, 10000), ("az2", 5, 400, 10000)))
    usage = (Usage("telecom", "az1", vcpu=1),)
    five = catalog([p], [department("d", [contract("C", "telecom")], [request("r", 6, ha=True)])])
    [reasons] = _unplaced(place(five, DAY, usage)).values()
    assert reasons == ("capacity on telecom: needs 6 x 2 vCPU/4 GB RAM/50 GB disk, ha: at most 3 per zone; "
                       "az1 fits 3 (vcpu free 6 of 7); az2 fits 2 (vcpu free 5 of 5)",)
    four = catalog([p], [department("d", [contract("C", "telecom")], [request("r", 4, ha=True)])])
    assert dict(place(four, DAY, usage).placements[0].zones) == {"az1": 2, "az2": 2}


def test_the_capacity_message_names_the_tightest_resource():
    # ram is what binds (8 GB free for 4 GB instances), not vCPU (100 free) nor disk
    p = one_zone("telecom", vcpu=100, ram=10, disk=10000)
    cat = catalog([p], [department("d", [contract("C", "telecom")], [request("r", 3)])])
    [reasons] = _unplaced(place(cat, DAY, (Usage("telecom", "az1", ram_gb=2),))).values()
    assert reasons == ("capacity on telecom: needs 3 x 2 vCPU/4 GB RAM/50 GB disk; az1 fits 2 (ram_gb free 8 of 10)",)


def test_water_filling_levels_count_every_resource():
    # az1 is half full in RAM (0.5), az2 60 % full in vCPU (0.6): a zone's level is its largest ratio, so
    # az1 is the less utilised and stays so with both instances (RAM 0.5 + 2 x 0.01, vCPU 2 x 0.02)
    usage = (Usage("telecom", "az1", ram_gb=200), Usage("telecom", "az2", vcpu=60))
    cat = catalog([TEL], [department("d", [contract("C", "telecom")], [request("r", 2)])])
    assert dict(place(cat, DAY, usage).placements[0].zones) == {"az1": 2}
    cat = catalog([TEL], [department("d", [contract("C", "telecom")], [request("r", 1)])])
    assert dict(place(cat, DAY, usage).placements[0].zones) == {"az1": 1}


def test_water_filling_ties_go_to_the_first_zone():
    # two empty, equal zones: the first zone takes the first instance; then the second zone is the
    # lower and takes as many as keep it at or below the first zone's next level (2)
    cat = catalog([TEL], [department("d", [contract("C", "telecom")], [request("r", 3)])])
    assert dict(place(cat, DAY).placements[0].zones) == {"az1": 1, "az2": 2}
    cat = catalog([TEL], [department("d", [contract("C", "telecom")], [request("r", 1)])])
    assert dict(place(cat, DAY).placements[0].zones) == {"az1": 1}


def test_the_capacity_message_limits_ha_only_where_ha_applies():
    # 2 instances on two 2-vCPU zones (one small instance each): ha allows 1 per zone, the message says so;
    # without ha, or with one instance, there is no such limit to name
    p = provider("telecom", zones=(("az1", 2, 400, 10000), ("az2", 2, 400, 10000)))
    full = (Usage("telecom", "az2", vcpu=2),)
    rows = {(2, True): ", ha: at most 1 per zone", (2, False): "", (1, True): ""}
    for (count, ha), limit in rows.items():
        cat = catalog([p], [department("d", [contract("C", "telecom")], [request("r", count, ha=ha)])])
        usage = full + ((Usage("telecom", "az1", vcpu=2),) if count == 1 else ())
        [reasons] = _unplaced(place(cat, DAY, usage)).values()
        fits = (1 if count == 2 else 0, 0)
        assert reasons == (f"capacity on telecom: needs {count} x 2 vCPU/4 GB RAM/50 GB disk{limit}; "
                           f"az1 fits {fits[0]} (vcpu free {2 * fits[0]} of 2); "
                           f"az2 fits 0 (vcpu free 0 of 2)",), (count, ha)


def test_the_capacity_message_for_a_size_without_disk():
    p = one_zone("telecom", vcpu=2)
    tpl = template("web", {"nodisk": Size(2, 4, 0)})
    cat = catalog([p], [department("d", [contract("C", "telecom")], [request("r", 2, size="nodisk")])], [tpl])
    [reasons] = _unplaced(place(cat, DAY)).values()
    assert reasons == ("capacity on telecom: needs 2 x 2 vCPU/4 GB RAM/0 GB disk; az1 fits 1 (vcpu free 2 of 2)",)


# --------------------------------------------------------------------------- rule 7: the site-budget knapsack
SITES = (Site("yiyang", "city"), Site("taojiang", "county", parent="yiyang"),
         Site("fuqiushan", "township", parent="taojiang"))


def _sited(providers, departments, budgets, templates=None):
    """A catalog with SITES, ``budgets`` {site: CNY/month}, every department at fuqiushan (the township)."""
    sites = tuple(dataclasses.replace(s, budget_cny_per_month=budgets.get(s.name)) for s in SITES)
    depts = [dataclasses.replace(d, site="fuqiushan") for d in departments]
    return dataclasses.replace(catalog(providers, depts, templates), sites=sites)


def test_the_site_budget_keeps_the_most_roles():
    # budget 300 at the county: 'big' (2 instances, 250) comes first by cost and would leave 50 for the
    # 125-CNY roles; the budget knapsack keeps a + b (2 roles, 250) and defers big, which then cannot fit.
    depts = [department("d", [contract("C", "telecom")], [request("big", 2), request("a"), request("b")])]
    plan = place(_sited([TEL], depts, {"taojiang": 300}), DAY)
    assert sorted(_where(plan)) == [("d", "a", "primary"), ("d", "b", "primary")]
    assert _unplaced(plan)[("d", "big", "primary")] == (
        "budget: site taojiang 300 CNY/month: placing would make it 500",)
    # the same under a township budget that holds everything: the county's budget still decides
    plan = place(_sited([TEL], depts, {"fuqiushan": 10000, "taojiang": 300}), DAY)
    assert sorted(_where(plan)) == [("d", "a", "primary"), ("d", "b", "primary")]
    # a budget that holds all three: all placed
    assert len(place(_sited([TEL], depts, {"taojiang": 500}), DAY).placements) == 3


def test_the_site_budget_counts_a_dr_pair_with_its_standby():
    # budget 260. a and b cost 124.5 each (249 for 2 roles); the dr pair costs 125 for the primary and
    # 125 for the standby (250 for 2 roles). Counting the standby, a + b is the cheaper way to 2 roles;
    # counting the primary alone, pair + a (249.5) would look like 3 roles and the pair would go first.
    uni = provider("unicom")
    tpl = template("web", {"small": Size(2, 4, 50), "less": Size(2, 4, 49)})
    depts = [department("d", [contract("C", "telecom"), contract("B", "unicom", "backup")],
                        [request("pair", dr=True), request("a", size="less"), request("b", size="less")])]
    plan = place(_sited([TEL, uni], depts, {"taojiang": 260}, [tpl]), DAY)
    assert _where(plan) == {("d", "a", "primary"): ("telecom", {"az1": 1}, 124.5),
                            ("d", "b", "primary"): ("telecom", {"az2": 1}, 124.5)}
    assert plan.total_monthly_cost_cny == 249.0
    assert set(_unplaced(plan)) == {("d", "pair", "primary"), ("d", "pair", "standby")}


def test_the_site_budget_knapsack_prefers_the_cheaper_set_by_less_than_one_yuan():
    # budget 201: two roles fit, a + b (100 + 100.5) or the dr pair (100.2 + 100.2 = 200.4). The pair
    # is 0.10 CNY cheaper for the same 2 roles and is kept; a and b are deferred and do not fit after it.
    uni = provider("unicom", prices=(10, 0, 0.1, 0))
    tel = provider("telecom", prices=(10, 0, 0.1, 0))
    tpl = template("web", {"a": Size(10, 1, 0), "b": Size(10, 1, 5), "pair": Size(10, 1, 2)})
    depts = [department("d", [contract("C", "telecom"), contract("B", "unicom", "backup")],
                        [request("a", size="a"), request("b", size="b"), request("pair", size="pair", dr=True)])]
    plan = place(_sited([tel, uni], depts, {"taojiang": 201}, [tpl]), DAY)
    assert sorted((k[1], k[2], v[0], v[2]) for k, v in _where(plan).items()) == [
        ("pair", "primary", "telecom", 100.2), ("pair", "standby", "unicom", 100.2)]
    assert plan.total_monthly_cost_cny == 200.4


# --------------------------------------------------------------------------- the ceiling knapsack's fallback
def test_a_ceiling_group_over_the_knapsack_limit_keeps_the_cheapest_roles_that_fit():
    # KNAPSACK_MAX_ROLES + 1 one-CNY roles under a ceiling of KNAPSACK_MAX_ROLES: the fallback keeps the
    # first KNAPSACK_MAX_ROLES (spending exactly the ceiling) and defers the last. 'y' (another department,
    # two operators: after every one-operator role) then finds telecom full and unicom without room.
    n = KNAPSACK_MAX_ROLES
    tel = one_zone("telecom", vcpu=n, prices=(1, 0, 0, 0))
    uni = one_zone("unicom", vcpu=0, prices=(1, 0, 0, 0))
    tpl = template("web", {"one": Size(1, 1, 0)})
    many = [request(f"r{i:03d}", size="one") for i in range(n + 1)]
    cat = catalog([tel, uni], [department("d", [contract("C", "telecom", ceiling=n)], many),
                               department("e", [contract("E1", "telecom"), contract("E2", "unicom")],
                                          [request("y", size="one")])], [tpl])
    plan = place(cat, DAY)
    assert len(plan.placements) == n and {p.department for p in plan.placements} == {"d"}
    assert set(_unplaced(plan)) == {("d", f"r{n:03d}", "primary"), ("e", "y", "primary")}
    assert plan.total_monthly_cost_cny == n


# --------------------------------------------------------------------------- the two runs
def test_a_tie_between_the_two_runs_keeps_the_first():
    # one zone holds either 'a' (4 vCPU, 3 GB) or 'b' (2 vCPU, 8 GB), both 26 CNY. The first run takes
    # 'a' (name order on equal cost); the small-first run 'b' (8/9 of the RAM < 4/4 of the vCPUs).
    # Same number of roles, same cost: the first run's plan stands.
    p = one_zone("telecom", vcpu=4, ram=9, prices=(5, 2, 0, 0))
    tpl = template("web", {"a": Size(4, 3, 0), "b": Size(2, 8, 0)})
    cat = catalog([p], [department("d", [contract("C", "telecom")], [request("a", size="a"), request("b", size="b")])],
                  [tpl])
    plan = place(cat, DAY)
    assert _where(plan) == {("d", "a", "primary"): ("telecom", {"az1": 1}, 26.0)}
    assert optimum(cat, DAY) == (1, 26.0)


def test_the_small_first_run_orders_by_the_binding_share():
    # 8 vCPUs bind: 'big' (6 vCPU, little disk) first leaves no room for s1 and s2 (4 vCPU, more disk).
    # The small-first run ranks by the share of free capacity each takes (6/8 against 4/8), not by disk.
    p = one_zone("telecom", vcpu=8)
    tpl = template("web", {"big": Size(6, 6, 10), "s": Size(4, 4, 100)})
    cat = catalog([p], [department("d", [contract("C", "telecom")],
                                   [request("big", size="big"), request("s1", size="s"), request("s2", size="s")])],
                  [tpl])
    plan = place(cat, DAY)
    assert sorted(_where(plan)) == [("d", "s1", "primary"), ("d", "s2", "primary")]
    assert plan.total_monthly_cost_cny == 2 * (4 * 30 + 4 * 10 + 100 * 0.5) == 420.0
    assert optimum(cat, DAY) == (2, 420.0)


def test_the_most_constrained_role_goes_first():
    # telecom has room for one instance. y may use telecom or vega (vega is full); x (a dr pair) may put
    # its primary on telecom, unicom or west, its standby under unicom or mobile. x has the larger regret
    # (5 against 2), but y has fewer operators and goes first: y on telecom, x on unicom + mobile. With x
    # first, x would take telecom (standby on unicom); the repair pass could then only move x's primary
    # to west (unicom holds its standby): 3 roles either way, 720 instead of 390.
    tel = one_zone("telecom", vcpu=2)                                      # 125
    vega = one_zone("vega", vcpu=0, prices=(31, 10, 0.5, 25))              # 127
    uni = provider("unicom", prices=(32.5, 10, 0.5, 25))                   # 130
    mob = provider("mobile", prices=(35, 10, 0.5, 25))                     # 135
    west = provider("west", prices=(200, 10, 0.5, 25))                     # 465
    cat = catalog([tel, vega, uni, mob, west], [
        department("x", [contract("XT", "telecom"), contract("XU", "unicom"), contract("XW", "west"),
                         contract("XBU", "unicom", "backup"), contract("XBM", "mobile", "backup")],
                   [request("r", dr=True)]),
        department("y", [contract("YT", "telecom"), contract("YV", "vega")], [request("r")])])
    plan = place(cat, DAY)
    assert {k: v[0] for k, v in _where(plan).items()} == {
        ("x", "r", "primary"): "unicom", ("x", "r", "standby"): "mobile", ("y", "r", "primary"): "telecom"}
    assert plan.total_monthly_cost_cny == 390.0
    assert optimum(cat, DAY) == (3, 390.0)


def test_a_dr_primary_goes_where_primary_and_standby_cost_least_together():
    # primary contracts on p0 (125) and p1 (150), backup contracts on p0 and p2 (200). The cheapest
    # primary (p0) leaves the standby p2 (325 together); p1 leaves it p0 (275 together): p1 + p0.
    p0 = provider("p0")
    p1 = provider("p1", prices=(42.5, 10, 0.5, 25))
    p2 = provider("p2", prices=(67.5, 10, 0.5, 25))
    cat = catalog([p0, p1, p2], [department("d", [contract("A", "p0"), contract("B", "p1"),
                                                  contract("SA", "p0", "backup"), contract("SC", "p2", "backup")],
                                            [request("r", dr=True)])])
    plan = place(cat, DAY)
    assert {k[2]: (v[0], v[2]) for k, v in _where(plan).items()} == {"primary": ("p1", 150.0),
                                                                     "standby": ("p0", 125.0)}
    assert optimum(cat, DAY) == (2, 275.0)


# --------------------------------------------------------------------------- standby reasons
def test_a_standby_left_out_says_both_why_not_here_and_why_not_there():
    # the primary's only operator is telecom; the standby may use telecom (not: it hosts the primary)
    # or unicom (full): both reasons, each once, the dr one first
    uni = one_zone("unicom")
    cat = catalog([TEL, uni], [department("d", [contract("P", "telecom"), contract("B1", "telecom", "backup"),
                                                contract("B2", "unicom", "backup")], [request("r", dr=True)])])
    plan = place(cat, DAY, (Usage("unicom", "az1", vcpu=100),))
    assert _where(plan) == {("d", "r", "primary"): ("telecom", {"az1": 1}, SMALL)}
    assert _unplaced(plan) == {("d", "r", "standby"): (
        "dr: telecom also hosts the primary copy; the standby needs a different operator",
        "capacity on unicom: needs 1 x 2 vCPU/4 GB RAM/50 GB disk; az1 fits 0 (vcpu free 0 of 100)")}
    # without the telecom backup contract: the capacity reason alone
    cat = catalog([TEL, uni], [department("d", [contract("P", "telecom"), contract("B2", "unicom", "backup")],
                                          [request("r", dr=True)])])
    assert _unplaced(place(cat, DAY, (Usage("unicom", "az1", vcpu=100),))) == {("d", "r", "standby"): (
        "capacity on unicom: needs 1 x 2 vCPU/4 GB RAM/50 GB disk; az1 fits 0 (vcpu free 0 of 100)",)}


def _repaired_primary(first=()):
    """telecom holds 3 vCPUs; dp (1 vCPU, two operators) takes it first in both runs (dq has three
    operators, and the larger share of the room even counting its standby); dq (3 vCPUs) can only use
    telecom (1-CNY ceilings elsewhere), so the repair pass moves dp to unicom and places dq's primary.
    dq's standby may go to mobile (187.5) or unicom (375)."""
    tel = one_zone("telecom", vcpu=3)
    uni = provider("unicom", prices=(60, 20, 1, 50))
    mob = provider("mobile")
    west = provider("west")
    tpl = template("web", {"one": Size(1, 2, 25), "three": Size(3, 6, 75), "small": Size(2, 4, 50)})
    return catalog([tel, uni, mob, west], [*first,
        department("dp", [contract("PA", "telecom"), contract("PB", "unicom")], [request("p", size="one")]),
        department("dq", [contract("QA", "telecom"), contract("QB", "unicom", ceiling=1),
                          contract("QW", "west", ceiling=1), contract("QS", "unicom", "backup"),
                          contract("QM", "mobile", "backup")],
                   [request("q", size="three", dr=True)])], [tpl])


def test_a_primary_placed_by_the_repair_gets_one_standby_on_the_cheapest_backup():
    # a dr pair listed first (placed by the greedy, on west + mobile) changes nothing for dq
    early = department("da", [contract("AW", "west"), contract("AM", "mobile", "backup")], [request("r", dr=True)])
    plan = place(_repaired_primary([early]), DAY)
    assert sorted((k[0], k[2], v[0], v[2]) for k, v in _where(plan).items()) == [
        ("da", "primary", "west", SMALL), ("da", "standby", "mobile", SMALL),
        ("dp", "primary", "unicom", 125.0), ("dq", "primary", "telecom", 187.5), ("dq", "standby", "mobile", 187.5)]
    util = {(u.provider, u.zone): u.vcpu_ratio for u in plan.utilization if u.vcpu_ratio}
    assert util == {("telecom", "az1"): 1.0, ("unicom", "az1"): 0.01, ("mobile", "az1"): 0.02,
                    ("mobile", "az2"): 0.03, ("west", "az1"): 0.02}
    assert plan.unplaced == ()


def test_a_primary_placed_by_the_repair_tries_each_backup_for_its_standby():
    cat = _repaired_primary()
    # mobile full: the standby goes to unicom
    full = (Usage("mobile", "az1", vcpu=100), Usage("mobile", "az2", vcpu=100))
    plan = place(cat, DAY, full)
    assert {k[2]: v[0] for k, v in _where(plan).items() if k[0] == "dq"} == {"primary": "telecom",
                                                                            "standby": "unicom"}
    # unicom with 2 vCPUs free per zone too: room for dp, none for the standby, both reasons given
    busy = full + (Usage("unicom", "az1", vcpu=98), Usage("unicom", "az2", vcpu=98))
    plan = place(cat, DAY, busy)
    assert {k[0]: v[0] for k, v in _where(plan).items()} == {"dp": "unicom", "dq": "telecom"}
    assert _unplaced(plan) == {("dq", "q", "standby"): (
        "capacity on mobile: needs 1 x 3 vCPU/6 GB RAM/75 GB disk; az1 fits 0 (vcpu free 0 of 100); "
        "az2 fits 0 (vcpu free 0 of 100)",
        "capacity on unicom: needs 1 x 3 vCPU/6 GB RAM/75 GB disk; az1 fits 0 (vcpu free 1 of 100); "
        "az2 fits 0 (vcpu free 2 of 100)")}


# --------------------------------------------------------------------------- the repair pass
def test_the_repair_pass_skips_an_option_over_its_ceiling_and_tries_the_next():
    # dq may use telecom (ceiling 1: never) or unicom, which dp fills first (its regret is the larger).
    # The repair pass passes over telecom and moves dp to mobile to make room on unicom.
    tel = provider("telecom")                                             # 125
    uni = one_zone("unicom", vcpu=2, prices=(60, 20, 1, 50))              # 250
    mob = provider("mobile", prices=(200, 20, 1, 50))                     # 590
    cat = catalog([tel, uni, mob], [
        department("dp", [contract("PU", "unicom"), contract("PM", "mobile")], [request("p")]),
        department("dq", [contract("QT", "telecom", ceiling=1), contract("QU", "unicom")], [request("q")])])
    plan = place(cat, DAY)
    assert {k[0]: v[0] for k, v in _where(plan).items()} == {"dp": "mobile", "dq": "unicom"}
    assert plan.unplaced == ()


def _crowded(movers):
    """telecom holds movers + 1 one-instance roles: ``movers`` roles whose other operator (unicom) is
    full, then z whose other operator (vega) has room; q, the last by regret, finds telecom full and
    west full. Moving z is the repair pass's try number movers + 1."""
    tel = one_zone("telecom", vcpu=2 * (movers + 1))                     # 125
    uni = one_zone("unicom", vcpu=0, prices=(30.5, 10, 0.5, 25))          # 126: a move costs 1 more
    vega = provider("vega", prices=(67.5, 10, 0.5, 25))                   # 200: a move costs 75 more
    west = one_zone("west", vcpu=0, prices=(30.25, 10, 0.5, 25))          # 125.5: q's regret 0.5
    return catalog([tel, uni, vega, west], [
        department("a", [contract("AT", "telecom"), contract("AU", "unicom")],
                   [request(f"m{i:02d}") for i in range(movers)]),
        department("q", [contract("QT", "telecom"), contract("QW", "west")], [request("q")]),
        department("z", [contract("ZT", "telecom"), contract("ZV", "vega")], [request("z")])])


def test_the_repair_pass_tries_at_most_its_bound_of_moves_per_option():
    n = REPAIR_TRIES_PER_ROLE
    within = place(_crowded(n - 1), DAY)
    assert {k[0]: v[0] for k, v in _where(within).items() if k[0] != "a"} == {"q": "telecom", "z": "vega"}
    beyond = place(_crowded(n), DAY)
    assert {k[0]: v[0] for k, v in _where(beyond).items() if k[0] != "a"} == {"z": "telecom"}
    assert set(_unplaced(beyond)) == {("q", "q", "primary")}


def test_the_repair_pass_makes_room_twice_on_one_operator():
    # telecom holds two; m1 and m2 (vega has room for them) take it first; q1 and q2 (west is full)
    # each get telecom by moving one of them: the second finds m1 gone and moves m2
    tel = one_zone("telecom", vcpu=4)
    vega = provider("vega", prices=(67.5, 10, 0.5, 25))
    west = one_zone("west", vcpu=0, prices=(30.25, 10, 0.5, 25))
    cat = catalog([tel, vega, west], [
        department("m", [contract("MT", "telecom"), contract("MV", "vega")], [request("m1"), request("m2")]),
        department("q", [contract("QT", "telecom"), contract("QW", "west")], [request("q1"), request("q2")])])
    plan = place(cat, DAY)
    assert {k[1]: v[0] for k, v in _where(plan).items()} == {"m1": "vega", "m2": "vega", "q1": "telecom",
                                                             "q2": "telecom"}
    assert optimum(cat, DAY) == (4, 650.0)


# --------------------------------------------------------------------------- the improvement pass
def _freed_later(first=()):
    """After the repair pass moves m (2 instances) off telecom for q, telecom has room for one more;
    y (on sun, saving 25) and x (on unicom, saving 5) both want it; z (on quartz, saving 150) wants sun.
    ``first``: departments listed before the others."""
    def op(name, vcpu, per_instance):           # one zone; per_instance: the small size's price
        return one_zone(name, vcpu=vcpu, prices=((per_instance - 65) / 2, 10, 0.5, 25))
    provs = [op("vega", 100, 200), op("telecom", 4, 125), op("west", 0, 125.5), op("sun", 2, 150),
             op("unicom", 100, 130), op("rho", 0, 160), op("quartz", 100, 300)]

    def dept(name, *ops, count=1):
        return department(name, [contract(f"{name}-{o}", o) for o in ops], [request("r", count)])
    return catalog(provs, [*first, dept("m", "telecom", "vega", count=2), dept("q", "telecom", "west"),
                           dept("x", "telecom", "unicom"), dept("y", "telecom", "sun"),
                           dept("z", "sun", "rho", "quartz")])


def test_the_improvement_pass_gives_freed_room_to_the_biggest_saving_and_takes_a_second_round():
    # the greedy: m on telecom (full), y on sun, z on quartz (sun and rho full), x on unicom, q nowhere.
    # The repair pass moves m to vega and puts q on telecom. The improvement pass, biggest saving first:
    # m (150: does not fit back), z (150: sun still full), y to telecom (25), x (5: full now); a second
    # round then moves z to sun, which y left. 400 + 125 + 125 + 150 + 130 = 930, the optimum.
    cat = _freed_later()
    plan = place(cat, DAY)
    assert {k[0]: v[0] for k, v in _where(plan).items()} == {
        "m": "vega", "q": "telecom", "x": "unicom", "y": "telecom", "z": "sun"}
    assert plan.total_monthly_cost_cny == 930.0
    assert optimum(cat, DAY) == (5, 930.0)


def test_the_improvement_pass_looks_past_a_role_with_one_option():
    # the same, with a one-option department listed first: it changes nothing else (a role left out
    # would not do here: the small-first run would then be tried too, and it needs no improvement)
    cat = _freed_later([department("a", [contract("a-unicom", "unicom")], [request("r")])])
    plan = place(cat, DAY)
    assert {k[0]: v[0] for k, v in _where(plan).items()} == {
        "a": "unicom", "m": "vega", "q": "telecom", "x": "unicom", "y": "telecom", "z": "sun"}
    assert plan.total_monthly_cost_cny == 930.0 + 130.0


# --------------------------------------------------------------------------- more edges (second sample)
def test_water_filling_levels_count_disk_too():
    # az1 half full in disk (0.5), az2 60 % in vCPU: az1 is the less utilised
    usage = (Usage("telecom", "az1", disk_gb=5000), Usage("telecom", "az2", vcpu=60))
    cat = catalog([TEL], [department("d", [contract("C", "telecom")], [request("r", 2)])])
    assert dict(place(cat, DAY, usage).placements[0].zones) == {"az1": 2}


def test_residency_looks_past_an_operator_at_another_site():
    # the department's first contract is with an operator at another county: the second still counts
    sites = (Site("yiyang", "city"), Site("taojiang", "county", parent="yiyang"), Site("anhua", "county", parent="yiyang"))
    away = dataclasses.replace(one_zone("telecom"), zones=(dataclasses.replace(one_zone("telecom").zones[0], site="anhua"),))
    home = dataclasses.replace(one_zone("unicom"), zones=(dataclasses.replace(one_zone("unicom").zones[0], site="taojiang"),))
    dept = dataclasses.replace(department("d", [contract("A", "telecom"), contract("B", "unicom")], [request("r")]),
                               site="taojiang")
    plan = place(dataclasses.replace(catalog([away, home], [dept]), sites=sites), DAY)
    assert _where(plan) == {("d", "r", "primary"): ("unicom", {"az1": 1}, SMALL)}


def test_the_larger_regret_goes_first_not_the_larger_sum():
    # telecom holds 4 vCPUs: aa (2 vCPU: 125 or unicom 200, regret 75) or zz (4 vCPU: 250 or mobile
    # 260, regret 10). aa first: aa on telecom, zz on mobile, 385 (zz first would make it 450).
    tel = one_zone("telecom", vcpu=4)
    uni = provider("unicom", prices=(67.5, 10, 0.5, 25))                   # 200 per small
    mob = provider("mobile", prices=(32.5, 10, 0.5, 25))                   # 130 per small: 260 for two
    cat = catalog([tel, uni, mob], [
        department("aa", [contract("A1", "telecom"), contract("A2", "unicom")], [request("r")]),
        department("zz", [contract("Z1", "telecom"), contract("Z2", "mobile")], [request("r", 2)])])
    plan = place(cat, DAY)
    assert {k[0]: (v[0], v[2]) for k, v in _where(plan).items()} == {"aa": ("telecom", 125.0),
                                                                     "zz": ("mobile", 260.0)}
    assert optimum(cat, DAY) == (2, 385.0)


def test_the_knapsack_fallback_defers_the_dearest_role():
    # KNAPSACK_MAX_ROLES one-CNY roles and one two-CNY role under a ceiling of KNAPSACK_MAX_ROLES: the
    # fallback keeps the one-CNY roles (the ceiling exactly) and defers 'big', which then does not fit;
    # without the deferral 'big' would go first (the dearest) and two one-CNY roles would be left out
    n = KNAPSACK_MAX_ROLES
    tel = one_zone("telecom", vcpu=10 * n, prices=(1, 0, 0, 0))
    tpl = template("web", {"one": Size(1, 1, 0), "two": Size(2, 1, 0)})
    reqs = [request(f"r{i:03d}", size="one") for i in range(n)] + [request("big", size="two")]
    cat = catalog([tel], [department("d", [contract("C", "telecom", ceiling=n)], reqs)], [tpl])
    plan = place(cat, DAY)
    assert len(plan.placements) == n and set(_unplaced(plan)) == {("d", "big", "primary")}
    assert plan.total_monthly_cost_cny == n


def test_a_knapsack_tie_keeps_the_first_by_name():
    # ceiling 125 holds one of two 125-CNY roles (listed b, a): the knapsack keeps 'a', the first by name
    cat = catalog([TEL], [department("d", [contract("C", "telecom", ceiling=SMALL)], [request("b"), request("a")])])
    plan = place(cat, DAY)
    assert sorted(_where(plan)) == [("d", "a", "primary")]
