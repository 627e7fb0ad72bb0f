"""``yunshang tenant``: the openstacksdk engine (no Pulumi needed): apply, verify, adopt, destroy."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
import yaml

from cli.common import OutPath, catalog_option, clouds_option, echo_json, output_option, table
from cli.stack import date_option, mgmt_option, plan_option, specs_for


def _one_spec(catalog_dir, department, operator, day, management_cidr, plan_id, db_url, output):
    """The spec of DEPARTMENT on OPERATOR from the recorded plan (notes to stderr unless JSON)."""
    _, _, (spec,), _, notes = specs_for(catalog_dir, department, (operator,), day, management_cidr, plan_id, db_url)
    if output != "json":
        for n in notes:
            click.echo(f"note: {n}", err=True)
    return spec


def _state_option(f):
    return click.option("--state-dir", type=click.Path(file_okay=False), default=None, envvar="YUNSHANG_STATE_DIR",
                        help="Journals and admission ledgers. Env: YUNSHANG_STATE_DIR; "
                             "default ~/.local/state/yunshang.")(f)


@click.group()
def tenant() -> None:
    """A department's tenant on one operator, through openstacksdk (air-gapped sites, no Pulumi).

    \b
    Plan, then apply: every command that changes a cloud prints its change list first.
    apply and verify build the tenant of a recorded plan (--plan ID; default the latest one
    covering the department): record one with `yunshang plan --save --os-cloud ENGINEER`.
      yunshang plan --catalog examples/prefecture --save --os-cloud person-center-engineer
      yunshang tenant apply health --operator telecom --clouds clouds.yaml --dry-run
      yunshang tenant apply health --operator telecom --clouds clouds.yaml
      yunshang tenant verify health --operator telecom --clouds clouds.yaml   # drift, exit 1 if any
      yunshang tenant adopt --operator telecom --project legacy-gis --out adopted/
      yunshang tenant destroy health --operator telecom --clouds clouds.yaml
    Every apply is admitted first (live Placement capacity + the department's quota usage,
    serialised per operator); a refused apply names zone, resource and shortfall.
    """
    from yunshang.openstack.tenant import quiet_sdk_warnings

    quiet_sdk_warnings()


@tenant.command()
@click.argument("department")
@click.option("--operator", required=True, metavar="OP", help="Operator (catalog provider) to build the tenant on.")
@catalog_option
@date_option
@plan_option
@mgmt_option
@clouds_option
@click.option("--dry-run", is_flag=True, help="Print the change plan only; change nothing.")
@_state_option
@output_option
def apply(department, operator, catalog_dir, day, plan_id, db_url, management_cidr, clouds_file, dry_run, state_dir,
          output):
    """Converge DEPARTMENT's tenant on OPERATOR to its spec: create what is missing, update what
    differs, never delete what yunshang did not create. Idempotent: a second run changes nothing.

    The spec comes from a recorded plan (--plan ID, default the latest covering DEPARTMENT), never
    re-placed; a plan whose contracts expired or whose catalog changed under it is refused."""
    from yunshang.openstack.tenant import apply_tenant

    spec = _one_spec(catalog_dir, department, operator, day, management_cidr, plan_id, db_url, output)
    say = (lambda m: None) if output == "json" else click.echo
    res = apply_tenant(spec, clouds_file, dry_run=dry_run, say=say, state=Path(state_dir) if state_dir else None)
    if output == "json":
        echo_json(res.as_dict())
        return
    n = len([c for c in res.changes if c.action in ("create", "update", "delete")])
    if dry_run:
        click.echo(f"dry run: {n} change(s) planned, nothing applied")
    elif res.applied:
        left = res.remaining
        click.echo(f"applied {n} change(s) to {spec.stack_name}; "
                   + ("no drift left" if left is None or left.clean else
                      f"left: {len(left.missing)} missing, {len(left.different)} different, {len(left.extra)} extra"))


def _print_drift(drift, output, stack):
    if output == "json":
        echo_json({"stack": stack, **drift.as_dict()})
        return
    if drift.clean:
        click.echo(f"{stack}: no drift")
        return
    rows = [["missing", i[0], i[1], _k(i[2])] for i in drift.missing]
    rows += [["different", w[0], w[1], f"found {_k(h[2])}; want {_k(w[2])}"] for w, h in drift.different]
    rows += [["extra", i[0], i[1], _k(i[2])] for i in drift.extra]
    click.echo(f"{stack}: drift")
    click.echo(table(["DRIFT", "KIND", "NAME", "KEY INPUTS"], rows))


def _k(key) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in key)


@tenant.command()
@click.argument("department")
@click.option("--operator", required=True, metavar="OP")
@catalog_option
@date_option
@plan_option
@mgmt_option
@clouds_option
@output_option
@click.pass_context
def verify(ctx, department, operator, catalog_dir, day, plan_id, db_url, management_cidr, clouds_file, output):
    """Report drift between DEPARTMENT's spec and its tenant on OPERATOR: missing, extra, different.

    Read-only. Rules are compared normalised (ports 1-65535 = any, protocol any, missing
    remote = 0.0.0.0/0). Exit 0: no drift; exit 1: drift found."""
    from yunshang.openstack.tenant import verify_tenant

    spec = _one_spec(catalog_dir, department, operator, day, management_cidr, plan_id, db_url, output)
    drift = verify_tenant(spec, clouds_file)
    _print_drift(drift, output, spec.stack_name)
    if not drift.clean:
        ctx.exit(1)


@tenant.command()
@click.option("--operator", required=True, metavar="OP", help="Operator whose cloud holds the project.")
@click.option("--project", "project", required=True, metavar="NAME", help="Existing Keystone project to adopt.")
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False),
              default=None, help="Catalog (for the operator's cloud name); default: cloud = operator.")
@clouds_option
@click.option("--out", "out_dir", required=True, type=OutPath("dir"),
              help="Writes departments/<name>.yaml, templates/adopted-<name>.yaml and <name>.<operator>.import.json.")
@output_option
def adopt(operator, project, catalog_dir, clouds_file, out_dir, output):
    """Read an existing (brownfield) project and write (a) a department file in catalog format plus
    its template, (b) a Pulumi import file (`pulumi import --file`) for its resources. Read-only
    on the cloud; files are written only after everything was read."""
    from yunshang.openstack.tenant import adopt_project

    cloud = operator
    if catalog_dir:
        from cli.common import load_catalog
        from yunshang.errors import NotFound

        try:
            cloud = load_catalog(catalog_dir).provider(operator).cloud
        except KeyError:
            raise NotFound(f"unknown operator {operator!r} in {catalog_dir}") from None
    dept, tpl, imports = adopt_project(cloud, operator, project, clouds_file)
    out = Path(out_dir)
    files = {out / "departments" / f"{dept['name']}.yaml": yaml.safe_dump(dept, sort_keys=False, allow_unicode=True),
             out / "templates" / f"{tpl['name']}.yaml": yaml.safe_dump(tpl, sort_keys=False, allow_unicode=True),
             out / f"{dept['name']}.{operator}.import.json": json.dumps(imports, indent=2) + "\n"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    summary = {"department": dept["name"], "files": [str(p) for p in files], "requests": len(dept["requests"]),
               "import_resources": len(imports["resources"])}
    if output == "json":
        echo_json(summary)
    else:
        for p in files:
            click.echo(f"wrote {p}")
        click.echo(f"{len(dept['requests'])} request(s), {len(imports['resources'])} resource(s) to import; "
                   "check contracts (dates, ceiling) before adding the department to the catalog")


@tenant.command()
@click.argument("department")
@click.option("--operator", required=True, metavar="OP")
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False),
              default=None, help="Catalog (for the operator's cloud name); default: cloud = operator.")
@clouds_option
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True,
              help="Delete without asking (scripts). Without it: what would be deleted is listed and confirmed on the "
                   "terminal; with no terminal, refused (exit 2) before the cloud is touched.")
@_state_option
@output_option
def destroy(department, operator, catalog_dir, clouds_file, dry_run, yes, state_dir, output):
    """Remove DEPARTMENT's tenant on OPERATOR: only what yunshang created (its journal and markers).
    Foreign objects are kept, and then so is the project. Finishes a failed apply's leftovers too.

    Asks before deleting (lists the objects first) unless --yes; --dry-run only lists."""
    import sys

    from yunshang.openstack.tenant import destroy_tenant

    if not dry_run and not yes and not sys.stdin.isatty():
        raise click.UsageError(f"tenant destroy deletes {department}'s tenant on {operator}: confirm with --yes "
                               "(there is no terminal to ask on), or list what it would delete with --dry-run")

    cloud = operator
    if catalog_dir:
        from cli.common import load_catalog
        from yunshang.errors import NotFound

        cat = load_catalog(catalog_dir)
        try:
            cloud = cat.provider(operator).cloud
        except KeyError:
            raise NotFound(f"unknown operator {operator!r} in {catalog_dir}") from None
        try:
            cat.department(department)
        except KeyError:
            raise NotFound(f"unknown department {department!r} in {catalog_dir}") from None
    say = (lambda m: None) if output == "json" else click.echo
    state = Path(state_dir) if state_dir else None
    if not dry_run and not yes:
        would = destroy_tenant(cloud, operator, department, clouds_file, dry_run=True,
                               say=lambda m: click.echo(m, err=True), state=state)
        if not would:
            click.echo(f"nothing of {department}'s tenant on {operator} to delete", err=True)
        click.confirm(f"delete these {len(would)} object(s) of {department}'s tenant on {operator}?",
                      abort=True, err=True)
    plan = destroy_tenant(cloud, operator, department, clouds_file, dry_run=dry_run, say=say, state=state)
    if output == "json":
        echo_json({"department": department, "operator": operator, "dry_run": dry_run,
                   "deleted" if not dry_run else "would_delete": [c.as_dict() for c in plan]})
    else:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {len(plan)} object(s)")
