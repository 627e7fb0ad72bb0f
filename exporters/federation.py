"""Prometheus configs for one Prometheus per site, each federating its children's rolled-up series.

Each site's Prometheus scrapes the yunshang exporter(s) of its own machine room and, from each
child site's Prometheus, ``/federate`` the child's ``site:*`` series (what the child sees at each
site; the child holds its own children's, so the whole subtree comes up one level at a time) and
the site tree series. The recording rules (exporters/rules/yunshang-sites.rules.yml) then compute
``site_tree:*`` -- the site and everything below it -- at every level. ``external_labels:
{prom_site: <site>}`` keeps each Prometheus's contributions apart, ``honor_labels`` keeps them
as they were.

Pure: builds plain dicts (the CLI writes them as YAML).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from yunshang.model import Catalog
from yunshang.sites import SiteTree

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILES = ("yunshang.rules.yml", "yunshang-sites.rules.yml")
FEDERATE_MATCH = ('{__name__=~"site:.+"}', '{__name__=~"yunshang_site_(path|info|budget_cny)"}')
DEFAULT_PROMETHEUS = "prometheus-{site}:9090"
DEFAULT_EXPORTER = "yunshang-exporter-{site}:9180"


def default_exporter_sites(catalog: Catalog) -> set[str]:
    """Sites with a machine room: those some zone is at (they run an exporter by default)."""
    tree = SiteTree(catalog.sites)
    return {tree.resolve(z.site) for p in catalog.providers for z in p.zones}


def federation_configs(catalog: Catalog, prometheus: Mapping[str, str] | None = None,
                       exporters: Mapping[str, Sequence[str]] | None = None,
                       rules_dir: Path | str = RULES_DIR, scrape_interval: str = "30s") -> dict[str, dict]:
    """site -> Prometheus config. ``prometheus``: site -> its Prometheus HOST:PORT (default
    ``prometheus-<site>:9090``); ``exporters``: site -> the exporters it scrapes (default: sites
    with zones get ``yunshang-exporter-<site>:9180``). A site with neither an exporter nor a child
    that has a Prometheus gets none (nothing to collect)."""
    tree = SiteTree(catalog.sites)
    prometheus = dict(prometheus or {})
    if exporters is None:
        exporters = {s: [DEFAULT_EXPORTER.format(site=s)] for s in default_exporter_sites(catalog)}
    has: dict[str, bool] = {}

    def needed(site: str) -> bool:          # post-order: a site needs a Prometheus if it or a child has data
        if site not in has:
            kids = [needed(c) for c in tree.children(site)]
            has[site] = bool(exporters.get(site)) or any(kids)
        return has[site]

    needed(tree.root)
    out: dict[str, dict] = {}
    for s in tree.ordered():
        if not has[s.name]:
            continue
        jobs: list[dict] = []
        if exporters.get(s.name):
            jobs.append({"job_name": "yunshang", "static_configs": [{"targets": list(exporters[s.name])}]})
        for child in tree.children(s.name):
            if not has[child]:
                continue
            jobs.append({
                "job_name": f"federate-{child}", "honor_labels": True, "metrics_path": "/federate",
                "params": {"match[]": list(FEDERATE_MATCH)},
                "static_configs": [{"targets": [prometheus.get(child, DEFAULT_PROMETHEUS.format(site=child))],
                                    "labels": {"child_site": child}}],
            })
        out[s.name] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                       "external_labels": {"prom_site": s.name}},
            "rule_files": [str(Path(rules_dir) / f) for f in RULE_FILES],
            "scrape_configs": jobs,
        }
    return out
