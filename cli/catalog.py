"""``yunshang catalog``: validate and show a prefecture catalog."""
from __future__ import annotations

import click

from cli.common import catalog_option, echo_json, output_option, table


@click.group()
def catalog() -> None:
    """Validate and show a prefecture catalog.

    \b
    A catalog is a directory:
      providers.yaml          the qualified operators (prices, SLA, zones, capacity)
      departments/<name>.yaml each department's signed contracts, requests, users, probes
      templates/<name>.yaml   sizes, floating IPs, security-group rules, volumes, user_data
    \b
    Examples:
      yunshang catalog validate --catalog examples/prefecture
      yunshang catalog show --catalog examples/prefecture --output json
    """


@catalog.command()
@catalog_option
@output_option
@click.pass_context
def validate(ctx: click.Context, catalog_dir: str, output: str) -> None:
    """Check every file of the catalog and list ALL problems at once.

    Each problem names the file and line, the field path (for example
    providers[0].zones[1].overcommit.vcpu) and what was expected.
    Exit status 0 when valid, 2 when not. Nothing is written.
    """
    from yunshang.catalog import load_catalog
    from yunshang.errors import CatalogInvalid

    try:
        cat = load_catalog(catalog_dir)
    except CatalogInvalid as exc:
        if output != "json":
            raise
        echo_json({"valid": False, "catalog": catalog_dir,
                   "problems": [{"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                                for p in exc.problems]})
        ctx.exit(exc.exit_code)
    summary = _summary(cat)
    if output == "json":
        echo_json({"valid": True, "catalog": catalog_dir, **summary, "problems": []})
        return
    click.echo(f"catalog {catalog_dir} is valid: {summary['providers']} providers, {summary['departments']} "
               f"departments, {summary['contracts']} contracts, {summary['requests']} requests "
               f"({summary['instances']} instances incl. standby copies), {summary['templates']} templates"
               + (f", {summary['sites']} sites" if summary["sites"] else ""))


def _summary(cat) -> dict:
    return {
        "providers": len(cat.providers), "departments": len(cat.departments), "templates": len(cat.templates),
        "contracts": sum(len(d.contracts) for d in cat.departments),
        "requests": sum(len(d.requests) for d in cat.departments),
        "instances": sum(r.count * (2 if r.dr else 1) for d in cat.departments for r in d.requests),
        "sites": len(cat.sites),
    }


@catalog.command()
@catalog_option
@output_option
def show(catalog_dir: str, output: str) -> None:
    """Show providers, departments (contracts, requests) and templates.

    --output json prints the whole validated catalog, every field, for machines.
    """
    from yunshang.catalog import catalog_to_dict, load_catalog

    cat = load_catalog(catalog_dir)
    if output == "json":
        echo_json(catalog_to_dict(cat))
        return
    click.echo("Providers (prices in CNY per month; capacity = physical x overcommit)")
    click.echo(table(
        ["provider", "cloud", "dedicated", "mlps", "availability", "vcpu", "ram_gb", "disk_gb", "fip", "zones"],
        [[p.name, p.cloud, "yes" if p.dedicated else "no", p.mlps_level, f"{p.sla.availability:g}",
          f"{p.prices.vcpu:g}", f"{p.prices.ram_gb:g}", f"{p.prices.disk_gb:g}", f"{p.prices.floating_ip:g}",
          ", ".join(f"{z.name} ({z.capacity('vcpu'):g} vCPU, {z.capacity('ram_gb'):g} GB RAM, "
                    f"{z.capacity('disk_gb'):g} GB disk)" for z in p.zones)]
         for p in cat.providers]))
    if cat.sites:
        from yunshang.sites import tree_of

        tree = tree_of(cat)
        click.echo("\nSites (sites.yaml; budget in CNY per month for the site and the sites below it)")
        click.echo(table(
            ["site", "name", "tier", "parent", "budget", "zones", "departments"],
            [["  " * (len(tree.chain(s.name)) - 1) + s.name, s.display_name, s.tier, s.parent or "-",
              "" if s.budget_cny_per_month is None else f"{s.budget_cny_per_month:g}",
              ", ".join(f"{p.name}/{z.name}" for p in cat.providers for z in p.zones if z.site == s.name),
              len([d for d in cat.departments if d.site == s.name])] for s in tree.ordered()]))
    click.echo("\nDepartments")
    click.echo(table(
        ["#", "department", "name", "site", "mlps", "contracts", "requests", "instances", "users", "probes"],
        [[d.cidr_index, d.name, d.display_name, d.site, d.mlps_level, len(d.contracts),
          len(d.requests), sum(r.count * (2 if r.dr else 1) for r in d.requests), len(d.users), len(d.probes)]
         for d in cat.departments]))
    click.echo("\nContracts (ceiling in CNY per month)")
    click.echo(table(
        ["department", "contract", "provider", "role", "start", "end", "ceiling", "sla credits"],
        [[d.name, c.id, c.provider, c.role, c.start, c.end, f"{c.ceiling_cny_per_month:g}",
          ", ".join(f"<{s.below:g}: {s.credit_ratio:.0%}" for s in c.sla_credits)]
         for d in cat.departments for c in d.contracts]))
    click.echo("\nTemplates")
    click.echo(table(
        ["template", "image", "floating_ips", "sizes", "ingress rules", "volumes"],
        [[t.name, t.image, t.floating_ips,
          ", ".join(f"{n} {s.vcpu}/{s.ram_gb}/{s.disk_gb}" for n, s in t.sizes.items()),
          len(t.ingress), ", ".join(f"{v.name} {v.size_gb} GB" for v in t.volumes)]
         for t in cat.templates.values()]))
