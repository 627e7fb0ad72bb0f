"""sites.yaml and the site: fields: every bad value reported with all others (file:line), the tree logic,
and the bundled sample's hierarchy."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog_fixtures import DEPARTMENT, PROVIDERS, TEMPLATE, write_catalog
from cli.main import cli
from yunshang.catalog import load_catalog
from yunshang.errors import CatalogInvalid
from yunshang.model import Site
from yunshang.sites import SiteTree

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefecture"

GOOD = """\
sites:
  - {name: yiyang, display_name: 益阳市, tier: city}
  - {name: taojiang, display_name: 桃江县, tier: county, parent: yiyang,
     budget_cny_per_month: 300000}
  - {name: fuqiushan, display_name: 浮邱山乡, tier: township, parent: taojiang}
"""


def _cat(tmp_path, sites: str | None, zone_site=None, dept_site=None) -> Path:
    p, d = copy.deepcopy(PROVIDERS), copy.deepcopy(DEPARTMENT)
    if zone_site is not None:
        p["providers"][0]["zones"][0]["site"] = zone_site
    if dept_site is not None:
        d["site"] = dept_site
    root = write_catalog(tmp_path / "cat", p, [d], [copy.deepcopy(TEMPLATE)])
    if sites is not None:
        (root / "sites.yaml").write_text(sites, encoding="utf-8")
    return root


def _problems(root: Path) -> list[str]:
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(root)
    return [str(p) for p in exc.value.problems]


def test_no_sites_yaml_is_one_implicit_root(tmp_path):
    cat = load_catalog(_cat(tmp_path, None))
    assert cat.sites == ()
    assert {z.site for p in cat.providers for z in p.zones} == {"root"} == {d.site for d in cat.departments}


def test_good_sites_and_references(tmp_path):
    cat = load_catalog(_cat(tmp_path, GOOD, zone_site="taojiang", dept_site="fuqiushan"))
    assert [s.name for s in cat.sites] == ["yiyang", "taojiang", "fuqiushan"]
    assert cat.sites[1] == Site("taojiang", "county", "桃江县", "yiyang", 300000.0)
    assert cat.providers[0].zones[0].site == "taojiang" and cat.providers[0].zones[1].site == "yiyang"
    assert cat.department("health").site == "fuqiushan"


def test_every_bad_value_reported_at_once_with_lines(tmp_path):
    bad = """\
sites:
  - {name: yiyang, tier: city}
  - {name: hubei, tier: province}
  - {name: taojiang, tier: county, parent: yiyang, budget_cny_per_month: 0}
  - {name: anhua, tier: city, parent: taojiang}
  - {name: a, tier: county, parent: b}
  - {name: b, tier: county, parent: a}
  - {name: nanxian, tier: county, parent: nowhere}
  - {name: Bad_Name, tier: hamlet}
  - {name: taojiang, tier: county, parent: yiyang}
"""
    got = _problems(_cat(tmp_path, bad, zone_site="atlantis", dept_site="mars"))
    f = str(tmp_path / "cat" / "sites.yaml")
    want = [
        f"{f}:3: sites[1].name: a second root site 'hubei' (no parent); expected exactly one root, the first "
        f"is 'yiyang' at sites[0]",
        f"{f}:4: sites[2].budget_cny_per_month: expected a number greater than 0 CNY per month, got 0",
        f"{f}:5: sites[3].tier: expected a tier below its parent taojiang (county): township, got city",
        f"{f}:6: sites[4].parent: cycle in parents: a -> b -> a",
        f"{f}:8: sites[6].parent: unknown site 'nowhere'",
        f"{f}:9: sites[7].name: expected a name of lowercase letters",
        f"{f}:9: sites[7].tier: expected one of province | city | county | township, got 'hamlet'",
        f"{f}:10: sites[8].name: duplicate site name 'taojiang' (also at sites[2])",
        "providers.yaml:", "providers[0].zones[0].site: unknown site 'atlantis' (sites.yaml has: Bad_Name, a, anhua, b, ",
        "health.yaml:", "site: unknown site 'mars'",
    ]
    text = "\n".join(got)
    for w in want:
        assert w in text, f"missing {w!r} in\n{text}"


def test_child_more_than_one_tier_below_is_fine_same_tier_is_not(tmp_path):
    ok = "sites:\n  - {name: hunan, tier: province}\n  - {name: x, tier: township, parent: hunan}\n"
    assert [s.tier for s in load_catalog(_cat(tmp_path, ok)).sites] == ["province", "township"]
    same = "sites:\n  - {name: hunan, tier: province}\n  - {name: x, tier: province, parent: hunan}\n"
    [p] = _problems(_cat(tmp_path / "2", same))
    assert "sites.yaml:3: sites[1].tier: expected a tier below its parent hunan (province)" in p


@pytest.mark.parametrize("text, msg", [
    ("", "file is empty"),
    ("sites: []\n", "expected at least one site"),
    ("sites: {a: 1}\n", "expected a list"),
    ("places: []\n", "unknown field 'places'"),
    ("sites:\n  - {name: a, tier: city, parent: a}\n", "its own parent"),
    ("sites:\n  - {name: a, tier: city, colour: red}\n", "unknown field 'colour'"),
    ("sites:\n  - {name: a, tier: city, budget_cny_per_month: -5}\n", "greater than 0"),
    ("sites:\n  - {name: a, tier: city, budget_cny_per_month: lots}\n", "expected a number"),
    ("sites:\n  - {name: a, tier: city\n", "YAML syntax error"),
])
def test_bad_files(tmp_path, text, msg):
    got = "\n".join(_problems(_cat(tmp_path, text)))
    assert msg in got and "sites.yaml" in got


def test_site_reference_without_sites_yaml(tmp_path):
    [p] = _problems(_cat(tmp_path, None, dept_site="taojiang"))
    assert "site: unknown site 'taojiang' (the catalog has no sites.yaml: one implicit root site)" in p


def test_bad_site_name_type_on_zone(tmp_path):
    got = "\n".join(_problems(_cat(tmp_path, GOOD, zone_site=5)))
    assert "providers[0].zones[0].site: expected a name" in got


def test_cli_validate_exit_2_lists_site_problems(tmp_path):
    root = _cat(tmp_path, GOOD.replace("tier: township", "tier: city"))
    r = CliRunner().invoke(cli, ["catalog", "validate", "--catalog", str(root)])
    assert r.exit_code == 2 and "sites[2].tier" in r.output and "Traceback" not in r.output


def test_tree():
    t = SiteTree((Site("yiyang", "city"), Site("taojiang", "county", "", "yiyang"),
                  Site("anhua", "county", "", "yiyang"), Site("fuqiushan", "township", "", "taojiang")))
    assert t.root == "yiyang" and t.chain("fuqiushan") == ("fuqiushan", "taojiang", "yiyang")
    assert t.allows("fuqiushan", "yiyang") and t.allows("fuqiushan", "taojiang") and t.allows("anhua", "")
    assert not t.allows("fuqiushan", "anhua") and not t.allows("taojiang", "fuqiushan")
    assert t.subtree("yiyang") == ("yiyang", "anhua", "taojiang", "fuqiushan")
    assert t.children("yiyang") == ("anhua", "taojiang")
    assert SiteTree().root == "root"


def test_sample_hierarchy():
    cat = load_catalog(SAMPLE)
    t = SiteTree(cat.sites)
    tiers = [s.tier for s in cat.sites]
    assert t.root == "yiyang" and tiers.count("county") >= 3 and "township" in tiers
    county_zones = [z for p in cat.providers for z in p.zones if t.tier(z.site) == "county"]
    county_depts = [d for d in cat.departments if t.tier(d.site) in ("county", "township")]
    assert county_zones and county_depts


def test_committed_spend_lowers_every_budget_above():
    import dataclasses
    import datetime as dt

    from yunshang.placement import place
    from yunshang.sites import with_committed

    cat = load_catalog(SAMPLE)
    got = {s.name: s.budget_cny_per_month for s in with_committed(cat, {"xiang-fuqiushan-government": 59000.0,
                                                                        "health": 5.0, "nobody": 1.0}).sites}
    assert got["taojiang"] == 1000.0 and got["anhua"] == 40000.0 and got["fuqiushan"] is None
    assert got["yiyang"] is None                          # no budget: nothing to lower
    # a review placing one department alone sees the held spend of its county (rule 7)
    alone = dataclasses.replace(with_committed(cat, {"xiang-fuqiushan-government": 59000.0}),
                                departments=(cat.department("xian-taojiang-health"),))
    plan = place(alone, dt.date(2026, 11, 26))
    assert any("budget: site taojiang 1000 CNY/month" in r for u in plan.unplaced for r in u.reasons)
    assert with_committed(cat, {"xiang-fuqiushan-government": 1e9}).sites[1].budget_cny_per_month == 0.0


def test_catalog_show_lists_the_sites():
    r = CliRunner().invoke(cli, ["catalog", "show", "--catalog", str(SAMPLE)])
    assert r.exit_code == 0 and "Sites (sites.yaml" in r.output and "    fuqiushan" in r.output
    assert "cmcc/taojiang-1" in r.output


@pytest.mark.parametrize("budget, placed", [(8000, False), (20000, True)])
def test_request_review_sees_what_the_county_already_holds(tmp_path, budget, placed):
    """taojiang's township holds 7,000 CNY/month; a new 1,728 CNY/month request of the county's health
    bureau fits a 20,000 budget and not an 8,000 one (rule 7 in the review use case)."""
    import shutil

    from yunshang import lifecycle as lc
    from yunshang.authz import Identity
    from yunshang.store import CapacityRow, PlacementRow, open_store
    from yunshang.usecases import Deps
    from yunshang.usecases.requests import NotPlaceable, review

    root = tmp_path / "cat"
    shutil.copytree(SAMPLE, root)
    sites = root / "sites.yaml"
    sites.write_text(sites.read_text(encoding="utf-8").replace("budget_cny_per_month: 60000",
                                                               f"budget_cny_per_month: {budget}"), encoding="utf-8")
    cat = load_catalog(root)
    with open_store("sqlite:///" + str(tmp_path / "l.db")) as s:
        s.set_capacity([CapacityRow("cmcc", "taojiang-1", 1e6, 1e6, 1e7)], "ops")
        held = s.submit(lc.parse_request_document({"department": "xiang-fuqiushan-government", "requests": [
            {"name": "archive", "template": "web-standard", "size": "small", "count": 2}]}, "f", default_mlps=2), "d")
        s.review(held.id, "li", [PlacementRow("archive", "primary", "cmcc", "FQS-2026-01", "taojiang-1", 2, 4, 8, 100,
                                              2, 7000.0)])
        s.approve(held.id, "wang", "ok")
        new = s.submit(lc.parse_request_document({"department": "xian-taojiang-health", "requests": [
            {"name": "his2", "template": "app-java", "size": "medium", "count": 6}]}, "f", default_mlps=3), "d")
        s.endorse(new.id, "tj-head")
        deps = Deps(store=s, catalog=cat)
        who = Identity("u1", "reviewer-li", frozenset({"reviewer"}))
        if placed:
            rec, _ = review(deps, who, new.id, day=dt.date(2026, 11, 26))
            assert {p.provider for p in rec.placements} == {"cmcc"}
        else:
            with pytest.raises(NotPlaceable) as exc:
                review(deps, who, new.id, day=dt.date(2026, 11, 26))
            assert "budget: site taojiang 1000 CNY/month: placing would make it 1728" in str(exc.value)


def test_a_hostile_tree_is_reported_in_bounded_form(tmp_path):
    n = 1000      # one long cycle, and as many children above their parents' tier
    lines = ["sites:", f"  - {{name: s0, tier: province, parent: s{n - 1}}}"]
    lines += [f"  - {{name: s{i}, tier: city, parent: s{i - 1}}}" for i in range(1, n)]
    got = _problems(_cat(tmp_path, "\n".join(lines) + "\n"))
    assert len(got) == 101 and any("more problems of the tree (the first 100 are listed)" in p for p in got)
    cycle = [p for p in got if "cycle in parents" in p]
    assert len(cycle) == 1 and "(1000 sites)" in cycle[0] and len(cycle[0]) < 400
    unknown = "sites:\n  - {name: r, tier: city}\n" + "".join(
        f"  - {{name: x{i}, tier: county, parent: nope{i}}}\n" for i in range(50))
    msgs = _problems(_cat(tmp_path / "2", unknown))
    assert all(len(m) < 400 for m in msgs) and "... and 31 more" in msgs[0]
