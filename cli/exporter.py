"""`yunshang exporter`: serve Prometheus metrics (capacity, quotas, spend, SLA, self-metrics)."""
from __future__ import annotations

import logging
import os
import signal
import threading

import click

from cli.common import catalog_option, clouds_option, load_catalog
from yunshang.errors import NotFound, YunshangError
from yunshang.redact import install_log_redaction

DEFAULT_STATE = os.path.join(os.environ.get("XDG_STATE_HOME", os.path.expanduser("~/.local/state")),
                             "yunshang", "exporter-probes.json")


@click.group("exporter")
def exporter() -> None:
    """Prometheus exporter for the center, the departments and the takeover team.

    \b
    What it exports (docs/exporters.md lists every metric):
      capacity   per operator and zone from Placement: total, reserved, allocation
                 ratio, allocated, free (vCPU, memory bytes, disk bytes), instances,
                 headroom against the catalog's overcommit policy
      quotas     per department and operator: limit, in use, used ratio
      spend      what each tenant's resources cost per month vs the contract ceiling
      SLA        synthetic HTTP/TCP probes of each operator's API endpoints and each
                 department's published services; availability this calendar month
                 with declared maintenance excluded, target, error budget left
      self       yunshang_operator_up, refresh duration, last success, errors; per
                 family (capacity, quota limits, compute/network/volume usage) up and
                 the age of its data; OpenStack API calls, errors and latency per service

    \b
    Start here:
      yunshang exporter serve --catalog examples/prefecture --clouds clouds.yaml
      yunshang exporter dump  --catalog examples/prefecture --clouds clouds.yaml | promtool check metrics
    """


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT (e.g. 127.0.0.1:9180), got {listen!r}", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


def _check(catalog_dir, clouds_file, operators):
    """The catalog, once the options naming operators and the clouds file are known to be right."""
    catalog = load_catalog(catalog_dir)
    known = [p.name for p in catalog.providers]
    for op in operators:
        if op not in known:
            raise NotFound(f"--operator {op}: no such operator in {catalog_dir}/providers.yaml (known: {', '.join(known)})")
    if clouds_file and not os.path.isfile(clouds_file):
        raise NotFound(f"--clouds {clouds_file}: no such file (expected a clouds.yaml with one cloud per operator)")
    return catalog


def _build(catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,
           quota_limits_every):
    from exporters.service import Exporter, openstack_readers
    from exporters.store import ProbeStore

    catalog = _check(catalog_dir, clouds_file, operators)
    known = [p.name for p in catalog.providers]
    read_snapshot, read_catalog = openstack_readers(clouds_file, catalog, limits_max_age_seconds=quota_limits_every)
    return Exporter(catalog, list(operators) or known, read_snapshot, ProbeStore(state_file or None),
                    read_service_catalog=read_catalog, clouds_file=clouds_file, interval_seconds=interval,
                    probe_interval_seconds=probe_interval, max_concurrency=max_concurrency)


def _common(f):
    f = click.option("--quota-limits-every", type=click.FloatRange(0, 86400), default=300.0, show_default=True,
                     metavar="SECONDS",
                     help="How old a project's cached quota LIMITS may get before they are read again (they change "
                          "rarely; usage is read on every refresh; new projects are read at once; 0 = every refresh).")(f)
    f = click.option("--max-concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="How many operators are read at the same time (each operator: one refresh at a time).")(f)
    f = click.option("--state-file", default=DEFAULT_STATE, show_default=True, metavar="FILE",
                     help="Probe history (monthly tallies) so a restart does not reset the month. '' = keep in memory only.")(f)
    f = click.option("--probe-interval", type=click.FloatRange(1, 3600), default=15.0, show_default=True, metavar="SECONDS",
                     help="Seconds between synthetic probe rounds.")(f)
    f = click.option("--interval", type=click.FloatRange(1, 3600), default=30.0, show_default=True, metavar="SECONDS",
                     help="Seconds between refreshes of each operator (Placement, quotas).")(f)
    f = click.option("--operator", "operators", multiple=True, metavar="OP",
                     help="Only these operators (repeat). One instance per operator shards a large prefecture.")(f)
    f = clouds_option(f)
    f = catalog_option(f)
    return f


@exporter.command("serve")
@click.option("--listen", default="127.0.0.1:9180", show_default=True, metavar="HOST:PORT",
              help="Where /metrics is served.")
@_common
@click.option("-v", "--verbose", is_flag=True, help="Log every refresh.")
def serve(listen, catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,
          quota_limits_every, verbose):
    """Collect in the background and serve /metrics from memory until interrupted.

    Each operator is refreshed every --interval seconds by its own worker (at most
    --max-concurrency operators at once); probes run every --probe-interval seconds.
    A scrape returns the latest rendered snapshot at once: it never waits on
    OpenStack, and an operator that is down only shows yunshang_operator_up 0.
    Reading and rendering run in a child process (the collector), so scrapes
    stay fast while a large cloud is being read; if it dies, serve exits 1.

    \b
    Shard a large prefecture with one instance per operator:
      yunshang exporter serve --operator telecom --listen 127.0.0.1:9181
      yunshang exporter serve --operator unicom  --listen 127.0.0.1:9182
    """
    from exporters.service import CollectorProcess, make_http_server

    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()          # no log line (message, argument or traceback) carries a secret
    host, port = _parse_listen(listen)
    catalog = _check(catalog_dir, clouds_file, operators)
    names = list(operators) or [p.name for p in catalog.providers]
    del catalog                      # the collector process loads its own
    done = threading.Event()
    exit_code = [0]

    def _collector_exit(code):
        # 0: it was asked to stop (SIGTERM to the process group); anything else: it failed, and a server
        # without its collector would serve a page that no longer changes, so this one stops too.
        if code != 0 and not done.is_set():
            exit_code[0] = 1
            logging.getLogger("yunshang.exporter").error("collector process exited (code %s); stopping", code)
        _stop(None, None)

    # Reading OpenStack, parsing its answers and rendering run in a child process: this one only serves.
    collector = CollectorProcess(_build, (catalog_dir, clouds_file, operators, interval, probe_interval, state_file,
                                          max_concurrency, quota_limits_every), on_exit=_collector_exit,
                                 log_level=level)
    try:
        server = make_http_server(collector, host, port)
    except OSError as exc:
        raise YunshangError(f"--listen {listen}: cannot listen ({exc.strerror})") from None

    def _stop(signum, frame):  # noqa: ARG001
        if not done.is_set():
            done.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    collector.start()
    try:
        if not collector.wait_first_page(300):
            raise YunshangError("the exporter's collector process did not start (see the log above)")
        click.echo(f"yunshang exporter: http://{host}:{server.server_address[1]}/metrics "
                   f"(operators: {', '.join(names)}; refresh every {interval:g}s)", err=True)
        server.serve_forever(poll_interval=0.5)
    finally:
        collector.stop()
        server.server_close()
    if exit_code[0]:
        raise SystemExit(exit_code[0])


@exporter.command("dump")
@_common
def dump(catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,  # noqa: ARG001
         quota_limits_every):
    """Refresh every operator and probe every target once, print the exposition to stdout.

    \b
    For checks and debugging:
      yunshang exporter dump --catalog examples/prefecture --clouds clouds.yaml | promtool check metrics
    """
    from concurrent.futures import ThreadPoolExecutor

    exp = _build(catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,
                 quota_limits_every)
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
        list(pool.map(exp.refresh_operator, exp.operators))
        exp.probe_round(pool)
    click.echo(exp.render().decode(), nl=False)


def _site_addresses(values: tuple[str, ...], option: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        site, sep, addr = v.partition("=")
        host, colon, port = addr.rpartition(":")
        if not sep or not site or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.BadParameter(f"expected SITE=HOST:PORT (e.g. taojiang=10.3.0.5:9090), got {v!r}",
                                     param_hint=option)
        out.setdefault(site, []).append(addr)
    return out


@exporter.command("federation-config")
@catalog_option
@click.option("--out", "out_dir", required=True, metavar="DIR",
              help="Directory to write <site>.yml into (one Prometheus config per site).")
@click.option("--site", "only", multiple=True, metavar="SITE", help="Only these sites' configs (repeat).")
@click.option("--prometheus", "proms", multiple=True, metavar="SITE=HOST:PORT",
              help="Where a site's Prometheus listens (its parent federates from there). "
                   "Default: prometheus-<site>:9090.")
@click.option("--exporter", "exps", multiple=True, metavar="SITE=HOST:PORT",
              help="An exporter a site's Prometheus scrapes (repeat). Given at all, only these; "
                   "default: yunshang-exporter-<site>:9180 for every site some zone is at.")
@click.option("--rules-dir", default=None, metavar="DIR",
              help="Where the rule files are on the Prometheus hosts. Default: this checkout's exporters/rules.")
@click.option("--scrape-interval", default="30s", show_default=True, help="Scrape and rule evaluation interval.")
def federation_config(catalog_dir, out_dir, only, proms, exps, rules_dir, scrape_interval):
    """Write one Prometheus config per site, each federating its children's rolled-up series.

    \b
    Each site's Prometheus scrapes its own exporter(s) and /federate's every
    child site's Prometheus for the child's site:* series (what it sees at each
    site of its subtree) and the site tree series; the recording rules in
    exporters/rules/yunshang-sites.rules.yml then give site_tree:* (the site and
    everything below it: capacity, quota use, spend, SLA) at every level,
    township -> county -> city -> province. external_labels: {prom_site: <site>}.
    A site with no exporter and no child to federate gets no config.

    \b
    Example (the county taojiang is scraped by the city yiyang):
      yunshang exporter federation-config --catalog examples/prefecture --out prom/ \\
        --prometheus taojiang=10.3.0.5:9090 --exporter taojiang=10.3.0.5:9180 \\
        --exporter yiyang=10.1.0.5:9180
      prometheus --config.file=prom/yiyang.yml ...
    """
    import pathlib

    import yaml

    from exporters.federation import RULES_DIR, federation_configs
    from yunshang.sites import tree_of

    catalog = load_catalog(catalog_dir)
    tree = tree_of(catalog)
    prom = {k: v[-1] for k, v in _site_addresses(proms, "--prometheus").items()}
    exp = _site_addresses(exps, "--exporter") if exps else None
    for name, option in [(s, "--site") for s in only] + [(s, "--prometheus") for s in prom] + \
            [(s, "--exporter") for s in (exp or {})]:
        if name not in tree.sites:
            raise NotFound(f"{option} {name}: no such site (the catalog has: {', '.join(sorted(tree.sites))})")
    configs = federation_configs(catalog, prom, exp, rules_dir or RULES_DIR, scrape_interval)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for site, cfg in configs.items():
        if only and site not in only:
            continue
        s = tree.sites[site]
        head = (f"# Prometheus of site {site} ({s.tier}{', ' + s.display_name if s.display_name != site else ''}); "
                f"written by `yunshang exporter federation-config`.\n")
        (out / f"{site}.yml").write_text(head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True),
                                         encoding="utf-8")
        children = [j["job_name"].removeprefix("federate-") for j in cfg["scrape_configs"]
                    if j["job_name"].startswith("federate-")]
        click.echo(f"{out / (site + '.yml')}: {s.tier} {site}"
                   + (f", federates {', '.join(children)}" if children else ""))
