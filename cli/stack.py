"""``yunshang stack``: department tenants as Pulumi stacks (one per department per operator)."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import click
import yaml

from cli.common import (
    Cidr, OutPath, catalog_option, clouds_option, day_type, echo_json, load_catalog, output_option, table,
)

GRAPH_LABEL = ("declared by the program under Pulumi mocks (pulumi.runtime.set_mocks), not a preview "
               "against state: no engine ran and no cloud was asked")


def date_option(f):
    return click.option("--date", "day", type=day_type(), default=None, metavar="YYYY-MM-DD",
                        help="Apply date: the recorded plan's contracts must still be valid then. Default: today.")(f)


def plan_option(f):
    f = click.option("--plan", "plan_id", type=click.IntRange(min=1), default=None, metavar="ID",
                     help="The recorded plan to build (`yunshang plan --save`, or `request approve`). "
                          "Default: the latest recorded plan covering the department.")(f)
    from cli.request import db_option

    return db_option(f)


def operator_option(f):
    return click.option("--operator", "operators", multiple=True, metavar="OP",
                        help="Only this operator (repeatable). Default: every operator the plan places the "
                             "department on.")(f)


def mgmt_option(f):
    return click.option("--management-cidr", default=None, metavar="CIDR", type=Cidr(),
                        help="The center's management CIDR (admin ports are opened only to it). "
                             "Default: 10.250.0.0/24.")(f)


def specs_for(catalog_dir: str, department: str, operators: tuple[str, ...], day, management_cidr: str | None,
              plan_id: int | None = None, db_url: str | None = None):
    """(catalog, plan, [TenantSpec], plan record, notes) of the department on the chosen operators,
    from a recorded plan (never re-placed), checked against the catalog on the apply date."""
    from yunshang.errors import NotFound
    from yunshang.plans import plan_specs, resolve_plan
    from yunshang.store import open_store
    from yunshang.tenant import operators_of

    catalog = load_catalog(catalog_dir)
    try:
        catalog.department(department)
    except KeyError:
        raise NotFound(f"unknown department {department!r} (catalog {catalog_dir}: "
                       f"{', '.join(sorted(d.name for d in catalog.departments))})") from None
    for op in operators:
        try:
            catalog.provider(op)
        except KeyError:
            raise NotFound(f"unknown operator {op!r} (catalog {catalog_dir}: "
                           f"{', '.join(p.name for p in catalog.providers)})") from None
    date = (day.date() if day else dt.date.today())
    with open_store(db_url) as store:
        record, cat, plan, notes = resolve_plan(store, catalog, department, plan_id, date)
    ops = list(operators) or list(operators_of(cat, plan, department))
    return cat, plan, plan_specs(record, cat, plan, department, ops, management_cidr), record, notes


@click.group()
def stack() -> None:
    """Department tenants as Pulumi stacks, one per department per operator: `<department>.<operator>`.

    \b
    The Pulumi program is stacks/ (Pulumi.yaml at the repo root). Stack config holds only inputs:
    catalog path, department, operator, the recorded plan's id and content hash (and an optional
    management CIDR); passwords only as Pulumi secrets. The program reads that plan from the
    lifecycle store; it never re-places. Every resource is bound to an explicit provider for the
    operator's named cloud in clouds.yaml.
    \b
    Examples:
      yunshang plan --catalog examples/prefecture --save --os-cloud person-center-engineer  # plan N
      yunshang stack render health --catalog examples/prefecture --plan N
      yunshang stack graph health --catalog examples/prefecture --output json
      yunshang stack up health --operator telecom --clouds clouds.yaml    # needs the pulumi CLI
    """


@stack.command()
@click.argument("department")
@catalog_option
@operator_option
@date_option
@plan_option
@mgmt_option
@click.option("--dir", "out_dir", default=".", show_default=True, type=OutPath("dir"),
              help="Where to write Pulumi.<department>.<operator>.yaml (the directory holding Pulumi.yaml).")
@output_option
def render(department, catalog_dir, operators, day, plan_id, db_url, management_cidr, out_dir, output):
    """Write the stack config file(s) Pulumi.<DEPARTMENT>.<operator>.yaml (inputs only, no secrets):
    catalog, department, operator and the recorded plan's id and content hash the program reads.

    The tenant spec is derived first, so a bad department, operator, contract or template fails
    here with one line and nothing is written."""
    _, plan, specs, record, notes = specs_for(catalog_dir, department, operators, day, management_cidr, plan_id,
                                              db_url)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cat_path = os.path.relpath(os.path.abspath(catalog_dir), os.path.abspath(out))
    written = []
    for s in specs:
        cfg = {"yunshang:catalog": cat_path, "yunshang:department": s.department,
               "yunshang:operator": s.operator, "yunshang:plan": record.id, "yunshang:planHash": record.content_hash}
        if management_cidr:
            cfg["yunshang:managementCidr"] = management_cidr
        path = out / f"Pulumi.{s.stack_name}.yaml"
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(f"# stack {s.stack_name}: written by `yunshang stack render`; inputs only.\n"
                       + yaml.safe_dump({"config": cfg}, sort_keys=True, allow_unicode=True))
        os.replace(tmp, path)
        written.append({"stack": s.stack_name, "file": str(path), "servers": len(s.servers), "cidr": s.network.cidr,
                        "plan": record.id})
    if output == "json":
        echo_json(written)
    else:
        _notes(notes)
        click.echo(table(["STACK", "FILE", "SERVERS", "CIDR"],
                         [[w["stack"], w["file"], w["servers"], w["cidr"]] for w in written]))


@stack.command()
@click.argument("department")
@catalog_option
@operator_option
@date_option
@plan_option
@mgmt_option
@output_option
def graph(department, catalog_dir, operators, day, plan_id, db_url, management_cidr, output):
    """Show the resources the program declares for DEPARTMENT's stacks: type, name, operator, key inputs.

    This runs the program under Pulumi's mock monitor: it is what the program DECLARES, not a
    preview against state (no engine, no cloud)."""
    from stacks.graph import declare_tenant, graph_rows

    _, _, specs, _, notes = specs_for(catalog_dir, department, operators, day, management_cidr, plan_id, db_url)
    result = []
    for s in specs:
        rows = graph_rows(declare_tenant(s))
        result.append({"stack": s.stack_name, "operator": s.operator, "cloud": s.cloud, "resources": rows})
    if output == "json":
        echo_json({"note": GRAPH_LABEL, "stacks": result})
        return
    click.echo(f"NOTE: {GRAPH_LABEL}.")
    _notes(notes)
    for st in result:
        click.echo(f"\nstack {st['stack']} (operator {st['operator']}, cloud {st['cloud']}): "
                   f"{len(st['resources'])} resources")
        click.echo(table(["TYPE", "NAME", "OPERATOR", "KEY INPUTS"],
                         [[r["type"].split(":", 1)[-1], r["name"], r["operator"] or "-", _key_inputs(r["inputs"])]
                          for r in st["resources"]]))


def _notes(notes) -> None:
    for n in notes:
        click.echo(f"note: {n}", err=True)


def _key_inputs(inputs: dict) -> str:
    s = json.dumps(inputs, ensure_ascii=False, sort_keys=True, separators=(",", "="))
    return s if len(s) <= 90 else s[:87] + "..."


def backend_option(f):
    return click.option("--backend", default=None, envvar="YUNSHANG_PULUMI_BACKEND", metavar="URL",
                        help="Pulumi state backend: file://DIR (default: <state dir>/pulumi/backend) or "
                             "postgres://USER@HOST:PORT/DB for teams sharing stacks.")(f)


def _engine_command(verb: str):
    @click.argument("department")
    @catalog_option
    @operator_option
    @date_option
    @plan_option
    @mgmt_option
    @clouds_option
    @backend_option
    @click.option("--refresh/--no-refresh", "refresh", default=(verb == "up"),
                  help="Read the cloud into the state first (shows / repairs what was changed by hand). "
                       "Default: on for up, off for preview.", hidden=verb not in ("preview", "up"))
    @click.option("--yes", "-y", is_flag=True, hidden=verb != "destroy",
                  help="Destroy without asking (scripts). Without it the stacks are named and confirmed on the "
                       "terminal; with no terminal, refused (exit 2) before anything is read.")
    @output_option
    def cmd(department, catalog_dir, operators, day, plan_id, db_url, management_cidr, clouds_file, backend, refresh,
            yes, output):
        import sys

        from stacks.automation import destroy_stack, preview_stack, refresh_stack, require_pulumi, up_stack

        if verb == "destroy" and not yes and not sys.stdin.isatty():
            raise click.UsageError(f"stack destroy deletes every resource of {department}'s stacks: confirm with "
                                   "--yes (there is no terminal to ask on), or see them first with `stack preview`")
        require_pulumi()  # fail at once, before reading anything
        catalog, plan, specs, _, notes = specs_for(catalog_dir, department, operators, day, management_cidr, plan_id,
                                                   db_url)
        if output != "json":
            _notes(notes)
        if verb == "destroy" and not yes:
            names = ", ".join(f"{s.stack_name} (operator {s.operator})" for s in specs)
            click.confirm(f"destroy {len(specs)} stack(s) of {department}, every resource in them: {names}?",
                          abort=True, err=True)
        results = []
        for s in specs:
            show = None if output == "json" else click.echo
            if verb == "preview":
                results.append(preview_stack(s, clouds_file, on_output=show, backend=backend, refresh=refresh,
                                             catalog=catalog))
            elif verb == "up":  # admission first, inside up_stack
                results.append(up_stack(catalog, plan, s, clouds_file, on_output=show, backend=backend,
                                        refresh=refresh))
            elif verb == "refresh":
                results.append(refresh_stack(s, clouds_file, on_output=show, backend=backend))
            else:
                results.append(destroy_stack(s, clouds_file, on_output=show, backend=backend))
        if output == "json":
            echo_json(results)
        else:
            for r in results:
                for n in r.get("recovered") or []:
                    click.echo(f"note: {n}", err=True)
                click.echo(f"{r['stack']}: {verb} {r.get('result', 'done')} {r.get('changes', {})}")
                for x in r.get("extra_rules") or []:
                    click.echo(f"  rule added outside the stack (the next up deletes it): {x['rule']}")
                for x in r.get("extra_rules_deleted") or []:
                    click.echo(f"  deleted rule added outside the stack: {x['rule']}")

    cmd.__doc__ = {
        "preview": "Pulumi preview of DEPARTMENT's stacks against their state, with the policy pack.",
        "up": "Admit (live capacity + quota), then `pulumi up --refresh` DEPARTMENT's stacks, with the policy pack.",
        "refresh": "`pulumi refresh` DEPARTMENT's stacks: read the cloud into the state, report rules added by hand.",
        "destroy": "`pulumi destroy` DEPARTMENT's stacks.",
    }[verb] + ("\n\nOne workspace per stack under the state dir ($YUNSHANG_STATE_DIR/pulumi/<stack>); one update "
               "of a stack at a time (a second is refused, exit 4). The engine is the one `make pulumi` built; "
               "without it: one line saying what to install, exit 6.\n\nThe stacks are built from a recorded plan "
               "(--plan ID, default the latest covering DEPARTMENT; "
               "`yunshang plan --save` records one), never re-placed; a plan whose contracts expired or whose "
               "catalog changed under it is refused, naming what changed.")
    return stack.command(name=verb)(cmd)


preview = _engine_command("preview")
up = _engine_command("up")
refresh = _engine_command("refresh")
destroy = _engine_command("destroy")


@stack.command(name="export")
@click.argument("department")
@catalog_option
@click.option("--operator", "operators", multiple=True, required=True, metavar="OP", help="The stack's operator.")
@date_option
@plan_option
@mgmt_option
@clouds_option
@backend_option
def export_cmd(department, catalog_dir, operators, day, plan_id, db_url, management_cidr, clouds_file, backend):
    """Print the stack's state (`pulumi stack export`) as JSON; secrets stay encrypted."""
    from stacks.automation import export_stack, require_pulumi

    require_pulumi()
    _, _, specs, _, _ = specs_for(catalog_dir, department, operators, day, management_cidr, plan_id, db_url)
    echo_json(export_stack(specs[0], clouds_file, backend=backend))


@stack.command(name="policy-config")
@click.argument("department")
@catalog_option
@operator_option
@date_option
@plan_option
@mgmt_option
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Where to write the JSON file for `pulumi preview --policy-pack stacks/policy "
                   "--policy-pack-config FILE`.")
def policy_config_cmd(department, catalog_dir, operators, day, plan_id, db_url, management_cidr, out_file):
    """Write the policy pack's config for DEPARTMENT (MLPS level, clouds of its valid contracts).

    For hand-written stacks: `pulumi preview --policy-pack stacks/policy --policy-pack-config FILE`."""
    from stacks.policy.config import write_policy_config

    catalog, _, specs, _, _ = specs_for(catalog_dir, department, operators, day, management_cidr, plan_id, db_url)
    path = write_policy_config(specs[0], Path(out_file), catalog)
    click.echo(str(path))
