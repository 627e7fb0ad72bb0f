"""The order a catalog lists departments and requests in never changes a plan.

Found by the property test (tests/unit/test_placement_properties.py): two dr standbys of the same
department, both placed after the repair pass, swapped zones when the requests were listed in
reverse. Standbys carry no order key of their own; the repair pass sorted on that key alone and the
standby pass after it ran in catalog order, so input order broke the tie.
"""
from __future__ import annotations

import dataclasses
import itertools

from catalog_fixtures import DAY, catalog, contract, department, provider, request, template
from yunshang.placement import place

END = DAY.replace(year=2027, month=3, day=6)


def _catalog(requests):
    p0 = provider("p0", zones=(("az1", 0, 0, 0), ("az2", 6, 12, 150), ("az3", 8, 16, 200)), mlps=2,
                  prices=(1, 1, 0.5, 10))
    p1 = provider("p1", zones=(("az1", 8, 16, 200),), mlps=2, prices=(1, 2, 0.5, 10))
    contracts = [contract("d0-c0", "p0", start=DAY, end=END, ceiling=0),
                 contract("d0-c1", "p0", start=DAY, end=END, ceiling=0),
                 contract("d0-c2", "p0", start=DAY, end=END, ceiling=3000),
                 contract("d0-c3", "p1", start=DAY, end=END, ceiling=3000),
                 contract("d0-c4", "p0", "backup", start=DAY, end=END, ceiling=3000)]
    return catalog([p0, p1], [department("dept0", contracts, requests)], [template(floating_ips=1)])


REQUESTS = [request("r0", level=1), request("r1", 5, level=1), request("r2", level=1, dr=True),
            request("r3", level=1), request("r4", level=1, dr=True)]


def _where(plan):
    return {(p.request, p.role): (p.provider, p.contract, p.zones) for p in plan.placements}


def test_standbys_placed_after_the_repair_pass_do_not_depend_on_request_order():
    plan = place(_catalog(REQUESTS), DAY)
    where = _where(plan)
    # the two standbys share the backup operator's two free zones, one each, by request name
    assert where[("r2", "standby")] == ("p0", "d0-c4", (("az2", 1),))
    assert where[("r4", "standby")] == ("p0", "d0-c4", (("az3", 1),))
    assert plan.total_monthly_cost_cny == 467.0 and not plan.unplaced
    for order in itertools.permutations(REQUESTS):
        assert place(_catalog(list(order)), DAY) == plan, [r.name for r in order]


def test_department_order_does_not_matter_either():
    cat = _catalog(REQUESTS)
    other = dataclasses.replace(cat.departments[0], name="dept1", display_name="dept1")
    a = dataclasses.replace(cat, departments=(cat.departments[0], other))
    b = dataclasses.replace(cat, departments=(other, cat.departments[0]))
    assert place(a, DAY) == place(b, DAY)
