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


def _build(catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,
           quota_limits_every):
    from exporters.service import Exporter, openstack_readers
    from exporters.store import ProbeStore

    catalog = load_catalog(catalog_dir)
    known = [p.name for p in catalog.providers]
    for op in operators:
        if op not in known:
            raise NotFound(f"--operator {op}: no such operator in {catalog_dir}/providers.yaml (known: {', '.join(known)})")
    if clouds_file and not os.path.isfile(clouds_file):
        raise NotFound(f"--clouds {clouds_file}: no such file (expected a clouds.yaml with one cloud per operator)")
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

    \b
    Shard a large prefecture with one instance per operator:
      yunshang exporter serve --operator telecom --listen 127.0.0.1:9181
      yunshang exporter serve --operator unicom  --listen 127.0.0.1:9182
    """
    from exporters.service import make_http_server

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()          # no log line (message, argument or traceback) carries a secret
    host, port = _parse_listen(listen)
    exp = _build(catalog_dir, clouds_file, operators, interval, probe_interval, state_file, max_concurrency,
                 quota_limits_every)
    try:
        server = make_http_server(exp, host, port)
    except OSError as exc:
        raise YunshangError(f"--listen {listen}: cannot listen ({exc.strerror})") from None
    done = threading.Event()

    def _stop(signum, frame):  # noqa: ARG001
        done.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    exp.start()
    click.echo(f"yunshang exporter: http://{host}:{server.server_address[1]}/metrics "
               f"(operators: {', '.join(exp.operators)}; refresh every {interval:g}s)", err=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        exp.stop()
        server.server_close()


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
