"""Two real Prometheus servers from `yunshang exporter federation-config`: the county taojiang's
scrapes its exporter; the city yiyang's scrapes its own and federates the county's rolled-up
series. The site_tree:* figures at the city must add both up (issue 13)."""
from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, start_http_server

from cli.main import cli
from exporter_harness import CATALOG, Proc, free_port, http_get, need, wait_until
from exporters.collectors import CapacityCollector, QuotaCollector, SiteCollector, SpendCollector
from exporters.state import ExporterState
from yunshang.capacity import OperatorSnapshot, QuotaUsage, ZoneCapacity
from yunshang.catalog import load_catalog

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def _exporter(catalog, op, zones, quotas):
    """The real collectors over a fixed snapshot, served on a free port (what `exporter serve` renders)."""
    st = ExporterState([op])
    st.update(OperatorSnapshot(op, NOW, 0.1, ok=True, zones=tuple(zones), quotas=tuple(quotas)))
    reg = CollectorRegistry(auto_describe=False)
    for c in (CapacityCollector(st, catalog), QuotaCollector(st, catalog), SpendCollector(st, catalog, lambda: NOW),
              SiteCollector(catalog)):
        reg.register(c)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    return f"127.0.0.1:{port}", server


def _prometheus(tmp, name, config, port):
    exe = need("prometheus", "prometheus")
    d = tmp / name
    (d / "data").mkdir(parents=True)
    p = Proc([exe, f"--config.file={config}", f"--storage.tsdb.path={d / 'data'}",
              f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"], d / "prometheus.log", cwd=d)
    wait_until(lambda: p.alive() and http_get(f"http://127.0.0.1:{port}/-/ready"), 60, f"{name} ready\n{p.tail()}")
    return p


def _value(port, expr):
    import json
    import urllib.parse

    r = json.loads(http_get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    assert r["status"] == "success", r
    res = r["data"]["result"]
    return [(x["metric"], float(x["value"][1])) for x in res]


@pytest.fixture
def two_sites(tmp_path):
    catalog = load_catalog(CATALOG)
    county_exp, s1 = _exporter(catalog, "cmcc", [
        ZoneCapacity("cmcc", "taojiang-1", "VCPU", 128, 0, 4.0, 40),
        ZoneCapacity("cmcc", "anhua-1", "VCPU", 128, 0, 4.0, 8)], [
        QuotaUsage("cmcc", "xian-taojiang-health", "p1", "compute", "cores", 100, 30),
        QuotaUsage("cmcc", "xiang-fuqiushan-government", "p2", "compute", "cores", 20, 8)])
    city_exp, s2 = _exporter(catalog, "telecom", [
        ZoneCapacity("telecom", "az1", "VCPU", 2048, 0, 4.0, 500),
        ZoneCapacity("telecom", "az2", "VCPU", 2048, 0, 4.0, 300)], [
        QuotaUsage("telecom", "xian-taojiang-health", "p3", "compute", "cores", 50, 24),   # its standby copy
        QuotaUsage("telecom", "health", "p4", "compute", "cores", 500, 200)])
    county_port, city_port = free_port(), free_port()
    out = tmp_path / "prom"
    r = CliRunner().invoke(cli, ["exporter", "federation-config", "--catalog", str(CATALOG), "--out", str(out),
                                 "--prometheus", f"taojiang=127.0.0.1:{county_port}",
                                 "--prometheus", f"yiyang=127.0.0.1:{city_port}",
                                 "--exporter", f"taojiang={county_exp}", "--exporter", f"yiyang={city_exp}",
                                 "--scrape-interval", "1s"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["taojiang.yml", "yiyang.yml"]   # no exporter, no child: none
    promtool = need("promtool", "prometheus")
    for f in ("taojiang.yml", "yiyang.yml"):
        chk = subprocess.run([promtool, "check", "config", str(out / f)], capture_output=True, text=True)
        assert chk.returncode == 0, chk.stdout + chk.stderr
    county = _prometheus(tmp_path, "county", out / "taojiang.yml", county_port)
    city = _prometheus(tmp_path, "city", out / "yiyang.yml", city_port)
    try:
        yield county_port, city_port
    finally:
        city.stop()
        county.stop()
        for s in (s1, s2):
            s.shutdown()
            s.server_close()


def test_city_rolls_up_the_county(two_sites):
    county, city = two_sites

    def tree(port, metric, **labels):
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {m["site"]: v for m, v in _value(port, f"site_tree:{metric}:sum{{{sel}}}")}

    # the county's own Prometheus: its zone, its and its township's departments
    got = wait_until(lambda: (lambda t: t if "taojiang" in t else None)(tree(county, "yunshang_zone_vcpus_allocated")),
                     60, "county roll-up")
    assert got == {"taojiang": 40, "anhua": 8, "yiyang": 48}     # anhua-1 is anhua's, not taojiang's
    cores = wait_until(lambda: tree(county, "yunshang_quota_in_use", resource="cores") or None, 60, "county quota")
    assert cores == {"taojiang": 30 + 8, "fuqiushan": 8, "yiyang": 30 + 8}

    # the city: its own zones plus the county's, federated (anhua-1 came up with the county's series)
    def city_ready():
        t = tree(city, "yunshang_zone_vcpus_allocated")
        return t if t.get("yiyang") == 500 + 300 + 40 + 8 else None
    t = wait_until(city_ready, 90, "city roll-up including the county")
    assert t["taojiang"] == 40 and t["anhua"] == 8
    # taojiang's departments are seen at both levels: at the county (cmcc) and at the city (telecom standby)
    c = wait_until(lambda: (lambda x: x if x.get("taojiang") == 30 + 8 + 24 else None)(
        tree(city, "yunshang_quota_in_use", resource="cores")), 60, "city quota roll-up")
    assert c["fuqiushan"] == 8 and c["yiyang"] == 30 + 8 + 24 + 200
    # the federated series keep where they came from
    fed = _value(city, 'site:yunshang_zone_vcpus_allocated:sum{site="taojiang"}')
    assert [m.get("prom_site") for m, _ in fed] == ["taojiang"]
