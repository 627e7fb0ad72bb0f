"""``yunshang devcloud``: a real local OpenStack per operator on 127.0.0.1."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from cli.common import echo_json, output_option, table

DIR_HELP = "State directory. Env: YUNSHANG_DEVCLOUD_DIR; default ~/.local/share/yunshang/devcloud."


def _dir_option(f):
    return click.option("--dir", "devdir", type=click.Path(file_okay=False), metavar="DIR", default=None,
                        help=DIR_HELP)(f)


@click.group()
def devcloud() -> None:
    """A real OpenStack control plane per operator, on 127.0.0.1 (for demos and tests).

    Each operator (the catalog's `cloud:` names: telecom, unicom, govcloud) is its own
    cloud: its own Keystone, endpoints, ports and admin password. Keystone, Placement,
    Nova (fake virt driver, one nova-compute per catalog zone, zones as availability
    zones), Glance, Neutron (ML2, no agents) and Cinder (fake driver) run from their
    own venv; one MariaDB and one RabbitMQ are shared (a database set / vhost per operator).

    \b
      yunshang devcloud up                 # 2 operators, minutes on a cold machine
      eval "$(yunshang devcloud env)"      # OS_CLIENT_CONFIG_FILE=<dir>/clouds.yaml
      openstack --os-cloud telecom server list
      yunshang devcloud status -o json
      yunshang devcloud down               # stops only what `up` started, by PID
    """


@devcloud.command()
@click.option("--operators", "count", type=click.IntRange(1, 3), default=2, show_default=True,
              help="How many of the catalog's operators to run (in catalog order; ~2.4 GB RAM each).")
@_dir_option
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False),
              metavar="DIR", default=None,
              help="Catalog whose providers.yaml gives operators and zones (default: examples/prefecture).")
@click.option("--no-install", is_flag=True, help="Do not apt/pip install anything; fail if something is missing.")
@click.option("--port-offset", type=click.IntRange(0, 20000), default=None, envvar="YUNSHANG_DEVCLOUD_PORT_OFFSET",
              help="Shift every port by this much (a second devcloud dir on one machine). Default: the dir's "
                   "recorded offset, else 0.")
def up(count: int, devdir: str | None, catalog_dir: str | None, no_install: bool, port_offset: int | None) -> None:
    """Install what is missing, start what is not running, wait until every operator is ready.

    Idempotent: a second run leaves one healthy set; after a reboot it restarts on the
    existing state. Ready means every nova-compute has sent a heartbeat since it
    started and its host is mapped into the cell. Also starts the center's own Keystone
    (no other service) with the people of <catalog>/people.yaml (generated passwords, kept
    in <dir>/secrets.json, never printed). Writes <dir>/clouds.yaml (mode 0600) with one
    admin entry per operator named like the operator, `center` (the center's Keystone)
    and `person-<name>` for each person.
    """
    from yunshang.devcloud import Devcloud, read_operator_specs

    ops = read_operator_specs(catalog_dir, count)
    t0 = time.monotonic()
    steps = _expected_steps(len(ops))
    err = sys.stderr
    if not err.isatty():     # logs and CI: one line per step instead of a bar
        def progress_line(msg: str) -> None:
            click.echo(f"[{time.monotonic() - t0:5.0f}s] {msg}", err=True)
        dc = Devcloud(devdir, operators=ops, progress=progress_line, port_offset=port_offset, catalog_dir=catalog_dir)
        timings = dc.up(install=not no_install)
    else:
        with click.progressbar(length=steps, label="devcloud up", show_eta=False, show_pos=False,
                               item_show_func=lambda s: s, file=err) as bar:
            def progress(msg: str) -> None:
                bar.update(1 if bar.pos < steps - 1 else 0, f"[{time.monotonic() - t0:5.0f}s] {msg}")
            dc = Devcloud(devdir, operators=ops, progress=progress, port_offset=port_offset, catalog_dir=catalog_dir)
            timings = dc.up(install=not no_install)
            bar.update(steps - bar.pos, "ready")
    click.echo(f"devcloud ready: {', '.join(o.name for o in ops)} in {timings['up_seconds']:.0f} s")
    click.echo(f"clouds.yaml: {dc.layout.clouds_file}")
    click.echo(f"use it:      export OS_CLIENT_CONFIG_FILE={dc.layout.clouds_file}")


def _expected_steps(n: int) -> int:
    return 7 + n * 6


@devcloud.command()
@_dir_option
@output_option
def status(devdir: str | None, output: str) -> None:
    """Per operator and process: up or down, PID, port, resident memory."""
    from yunshang.devcloud import Devcloud

    st = Devcloud(devdir).status()
    if output == "json":
        echo_json(st)
    else:
        rows = [("shared", s["name"], "up" if s["up"] else "DOWN", s["pid"] or "", s["port"] or "",
                 _mb(s["rss_bytes"])) for s in st["shared"]]
        for o in st["operators"]:
            rows += [(o["operator"], s["name"], "up" if s["up"] else "DOWN", s["pid"] or "", s["port"] or "",
                      _mb(s["rss_bytes"])) for s in o["services"]]
        rows += [("center", s["name"], "up" if s["up"] else "DOWN", s["pid"] or "", s["port"] or "",
                  _mb(s["rss_bytes"])) for s in st.get("center", {}).get("services", [])]
        click.echo(table(["operator", "process", "state", "pid", "port", "rss_mb"], rows))
        click.echo(f"\n{'healthy' if st['up'] else 'NOT healthy'}; total RSS {_mb(st['rss_bytes'])} MB; "
                   f"clouds.yaml {st['clouds_file']}")
    if not st["up"]:
        raise SystemExit(1)


def _mb(b: int) -> str:
    return f"{b / 2**20:.0f}"


@devcloud.command()
@_dir_option
def down(devdir: str | None) -> None:
    """Stop every process `up` started in this dir (by recorded PID and process group). Keeps the data."""
    from yunshang.devcloud import Devcloud

    dc = Devcloud(devdir, progress=lambda m: click.echo(m, err=True))
    stopped = dc.down()
    click.echo(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))


@devcloud.command()
@_dir_option
def env(devdir: str | None) -> None:
    """Print what to export to use the devcloud (eval "$(yunshang devcloud env)").

    Only OS_CLIENT_CONFIG_FILE: pick an operator with --os-cloud / cloud=NAME explicitly.
    """
    from yunshang.devcloud import Devcloud

    dc = Devcloud(devdir)
    if not Path(dc.layout.clouds_file).exists():
        from yunshang.devcloud import DevcloudFailed

        raise DevcloudFailed(f"no devcloud in {dc.dir} (no clouds.yaml): run `yunshang devcloud up` first")
    for line in dc.env_lines():
        click.echo(line)
