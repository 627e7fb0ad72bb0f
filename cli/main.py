"""Entry point: ``yunshang``. Subcommands are imported lazily so ``--help`` starts fast.

Each noun group lives in its own module (``cli/<noun>.py``) and is listed in
``COMMANDS`` as ``name -> (module, attribute, one-line help)``; the module is
imported only when that command runs (or its own ``--help`` is asked for).
"""
from __future__ import annotations

import importlib
import importlib.util

import click

from yunshang.errors import YunshangError

COMMANDS: dict[str, tuple[str, str, str]] = {
    "catalog": ("cli.catalog", "catalog", "Validate and show a prefecture catalog (providers, departments, templates)."),
    "plan": ("cli.plan", "plan", "Place every department's requests on the operators its contracts allow."),
    "capacity": ("cli.capacity", "capacity", "Live capacity and usage per operator and zone, read from each cloud's Placement."),
    "devcloud": ("cli.devcloud", "devcloud",
                 "Stand up / stop a real local OpenStack per operator on 127.0.0.1 (for demos and tests)."),
    "stack": ("cli.stack", "stack", "Department tenants as Pulumi stacks: render config, show the graph, preview/up/destroy."),
    "tenant": ("cli.tenant", "tenant",
               "Apply, verify (drift), adopt and destroy tenants through openstacksdk (no Pulumi engine needed)."),
    "exporter": ("cli.exporter", "exporter",
                 "Serve Prometheus metrics: capacity, quotas, SLA and spend per operator/department/contract."),
    "migrate": ("cli.migrate", "migrate", "Migrate departmental servers in, wave by wave, through Ansible (ansible-runner)."),
    "request": ("cli.request", "request",
                "Capacity requests through their lifecycle: submit, review, approve, configure, publish, reclaim."),
    "bill": ("cli.bill", "bill", "Monthly bill and SLA evidence per contract (department x operator)."),
    "takeover": ("cli.takeover", "takeover", "Backup-cloud takeover: evaluate triggers, plan the move, run a drill."),
    "api": ("cli.api", "api", "The HTTP API for departments and the center's people (Keystone tokens, OpenAPI)."),
    "compliance": ("cli.compliance", "compliance", "Graded-protection (MLPS) checks of live tenants, as evidence."),
    "report": ("cli.report", "report",
               "The monthly report per site and tier: capacity use, spend vs budgets, SLA, MLPS, migration."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, and which turns
    ``YunshangError`` into one clear line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attr, short = entry
        if importlib.util.find_spec(module_name) is None:
            return None
        # A light placeholder keeps `yunshang --help` fast; it swaps in the real
        # command (importing its module) only when that command is run.
        return _Placeholder(name, module_name, attr, short)

    def invoke(self, ctx: click.Context):
        """The one place an exception becomes what the user sees: a ``YunshangError`` its message
        and exit code; anything else (a bug) one line, exit 1, and the traceback only with --debug."""
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except YunshangError as exc:
            if debug:
                _traceback()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:     # a bad argument: one line, exit 2, where to look
            if debug:
                _traceback()
            sub = exc.ctx.command_path if exc.ctx is not None else "yunshang"
            from yunshang.redact import redact

            click.echo(f"error: {redact(exc.format_message())} (see '{sub} --help')", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:          # `yunshang ... | head`: the reader left; nothing to say
            _quiet_stdout()
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last resort: never a bare traceback
            from yunshang.redact import exception_text

            if debug:
                _traceback()
            command = " ".join(x for x in ("yunshang", ctx.invoked_subcommand) if x)
            hint = "" if debug else "; run again with --debug for the traceback"
            click.echo(f"error: unexpected {type(exc).__name__} in {command}: "
                       f"{exception_text(exc, limit=200)} (this is a bug in yunshang{hint})", err=True)
            ctx.exit(1)


def _traceback() -> None:
    import traceback

    from yunshang.redact import redact

    click.echo(redact(traceback.format_exc()).rstrip(), err=True)


def _quiet_stdout() -> None:
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class _Placeholder(click.Command):
    """Stands in for a subcommand in the top-level help; resolves to the real one when run."""

    def __init__(self, name: str, module_name: str, attr: str, short: str):
        super().__init__(name, help=short, short_help=short)
        self._target = (module_name, attr)

    def _real(self) -> click.Command:
        module_name, attr = self._target
        return getattr(importlib.import_module(module_name), attr)

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):  # pragma: no cover - make_context already swapped in the real command
        return self._real().invoke(ctx)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="yunshang")
@click.option("--debug", is_flag=True, envvar="YUNSHANG_DEBUG",
              help="On an error, also print the Python traceback (for a bug report). Env: YUNSHANG_DEBUG.")
def cli(debug: bool) -> None:
    """yunshang: run a prefecture's government cloud center on OpenStack.

    The city qualifies several operators once; each department signs its own
    contracts with the operators it chooses. yunshang places each department's
    requests only on operators it holds valid contracts with, builds tenants,
    migrates servers in, and exports capacity and SLA metrics.

    \b
    Start here:
      yunshang catalog validate --catalog examples/prefecture
      yunshang plan --catalog examples/prefecture --output table
      yunshang devcloud up            # a real local OpenStack per operator

    Every command that prints a table also takes --output json.
    The catalog can also come from $YUNSHANG_CATALOG.
    """
    from yunshang.redact import install_last_resort

    install_last_resort()         # a library's stray warning (keystoneauth names the URL it contacted) is redacted


def main() -> None:
    cli(prog_name="yunshang")


if __name__ == "__main__":  # pragma: no cover
    main()
