"""site and tier labels on zone/department/contract series, and the site tree series (issue 13)."""
from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, generate_latest

from exporters.collectors import CapacityCollector, QuotaCollector, SiteCollector, SlaCollector, SpendCollector
from exporters.probes import ProbeTarget
from exporters.state import ExporterState
from exporters.store import ProbeStore
from yunshang.model import Site
from test_exporter_collectors import CATALOG, NOW, snap

SITES = (Site("yiyang", "city", "益阳市"), Site("taojiang", "county", "桃江县", "yiyang", 60000.0),
         Site("fuqiushan", "township", "浮邱山乡", "taojiang"))
TEL = CATALOG.providers[0]
SITED = dataclasses.replace(
    CATALOG, sites=SITES,
    providers=(dataclasses.replace(TEL, zones=(dataclasses.replace(TEL.zones[0], site="taojiang"),)),
               CATALOG.providers[1]),
    departments=(dataclasses.replace(CATALOG.departments[0], site="fuqiushan"),))


def reg(*cs):
    r = CollectorRegistry(auto_describe=False)
    for c in cs:
        r.register(c)
    return r


def test_zone_department_and_contract_series_carry_site_and_tier():
    st = ExporterState(["telecom", "unicom"])
    st.update(snap("telecom"))
    r = reg(CapacityCollector(st, SITED), QuotaCollector(st, SITED), SpendCollector(st, SITED, lambda: NOW))
    z = {"operator": "telecom", "zone": "az1", "site": "taojiang", "tier": "county"}
    assert r.get_sample_value("yunshang_zone_vcpus", z) == 64                    # exact label set
    assert r.get_sample_value("yunshang_zone_headroom_ratio", {**z, "resource": "vcpu"}) is not None
    # a zone the catalog does not know (the devcloud's "nova"): empty site, not a guess
    assert r.get_sample_value("yunshang_zone_vcpus", {"operator": "telecom", "zone": "nova", "site": "",
                                                      "tier": ""}) == 8
    d = {"operator": "telecom", "department": "health", "site": "fuqiushan", "tier": "township"}
    assert r.get_sample_value("yunshang_quota_in_use", {**d, "service": "compute", "resource": "cores"}) == 4
    assert r.get_sample_value("yunshang_contract_ceiling_cny", {**d, "contract": "H-TEL"}) == 1000.0


def test_sla_series_carry_the_departments_site():
    st = ExporterState(["telecom"])
    store = ProbeStore(None)
    t = ProbeTarget("telecom", "portal", "tcp", "127.0.0.1:1", department="health", contract="H-TEL")
    r = reg(SlaCollector(st, store, lambda: [t], SITED, clock=lambda: NOW))
    lv = {"operator": "telecom", "department": "health", "contract": "H-TEL", "site": "fuqiushan", "tier": "township"}
    assert r.get_sample_value("yunshang_sla_target_ratio", lv) is not None
    assert r.get_sample_value("yunshang_probe_samples_total", {**lv, "probe": "portal", "kind": "tcp"}) is not None


def test_site_tree_series():
    r = reg(SiteCollector(SITED))
    assert r.get_sample_value("yunshang_site_path", {"site": "fuqiushan", "tier": "township", "province": "",
                                                     "city": "yiyang", "county": "taojiang",
                                                     "township": "fuqiushan"}) == 1.0
    assert r.get_sample_value("yunshang_site_path", {"site": "yiyang", "tier": "city", "province": "",
                                                     "city": "yiyang", "county": "", "township": ""}) == 1.0
    assert r.get_sample_value("yunshang_site_info", {"site": "taojiang", "tier": "county", "parent": "yiyang"}) == 1
    assert r.get_sample_value("yunshang_site_budget_cny", {"site": "taojiang", "tier": "county"}) == 60000.0
    # without sites.yaml: the implicit root
    plain = reg(SiteCollector(CATALOG))
    assert plain.get_sample_value("yunshang_site_info", {"site": "root", "tier": "city", "parent": ""}) == 1.0
    assert b"yunshang_site_budget_cny{" not in generate_latest(plain)


def test_federation_configs_follow_the_tree():
    from pathlib import Path

    from exporters.federation import federation_configs
    from yunshang.catalog import load_catalog

    cat = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "prefecture")
    cfgs = federation_configs(cat)
    # sites with zones have an exporter by default; the township has neither zones nor children: no Prometheus
    assert sorted(cfgs) == ["anhua", "nanxian", "taojiang", "yiyang"]
    city = cfgs["yiyang"]
    assert city["global"]["external_labels"] == {"prom_site": "yiyang"}
    fed = {j["job_name"]: j for j in city["scrape_configs"] if j["job_name"].startswith("federate-")}
    assert sorted(fed) == ["federate-anhua", "federate-nanxian", "federate-taojiang"]
    assert fed["federate-taojiang"]["honor_labels"] is True and fed["federate-taojiang"]["metrics_path"] == "/federate"
    assert fed["federate-taojiang"]["static_configs"][0]["targets"] == ["prometheus-taojiang:9090"]
    assert [j["job_name"] for j in cfgs["taojiang"]["scrape_configs"]] == ["yunshang"]   # a leaf: no federation
    only_city = federation_configs(cat, exporters={"yiyang": ["10.1.0.5:9180"]})
    assert sorted(only_city) == ["yiyang"] and len(only_city["yiyang"]["scrape_configs"]) == 1


def test_federation_config_cli_refuses_bad_input(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from cli.main import cli

    sample = str(Path(__file__).resolve().parents[2] / "examples" / "prefecture")
    run = lambda *a: CliRunner().invoke(cli, ["exporter", "federation-config", "--catalog", sample,  # noqa: E731
                                              "--out", str(tmp_path / "o"), *a])
    r = run("--prometheus", "taojiang:9090")
    assert r.exit_code == 2 and "SITE=HOST:PORT" in r.output and not (tmp_path / "o").exists()
    r = run("--exporter", "atlantis=1.2.3.4:9180")
    assert r.exit_code != 0 and "no such site" in r.output and "taojiang" in r.output and "Traceback" not in r.output
    r = run("--site", "taojiang")
    assert r.exit_code == 0 and [p.name for p in (tmp_path / "o").iterdir()] == ["taojiang.yml"]
