"""``yunshang plan``: place every department's requests on the operators its contracts allow."""
from __future__ import annotations

import datetime as dt

import click

from cli.common import catalog_option, clouds_option, day_type, echo_json, output_option, table
from cli.request import db_option


@click.command()
@catalog_option
@click.option("--date", "date_", type=day_type(), metavar="YYYY-MM-DD",
              help="Plan as of this day: only contracts valid on it count. Default: today.")
@output_option
@click.option("--live", is_flag=True,
              help="Subtract what is already used on each operator (read from its cloud's Placement API); "
                   "an operator that cannot be read is left out, with the reason in the output.")
@clouds_option
@click.option("--save", is_flag=True,
              help="Record the plan in the lifecycle store (id, content hash, date, catalog digest): what "
                   "`stack preview|up|destroy` and `tenant apply|verify` apply (--plan ID, default the latest "
                   "recorded plan covering the department).")
@click.option("--department", "departments", multiple=True, metavar="DEPT",
              help="With --save: record only this department's placements (repeatable). Default: all.")
@click.option("--os-cloud", "os_cloud", metavar="NAME",
              help="With --save: act as this clouds.yaml entry's Keystone user (an engineer of the center, e.g. "
                   "person-center-engineer); the audit log records its name and Keystone id. The clouds.yaml is "
                   "--clouds, else $OS_CLIENT_CONFIG_FILE.")
@db_option
def plan(catalog_dir: str, date_: dt.datetime | None, output: str, live: bool, clouds_file: str | None,
         save: bool, departments: tuple[str, ...], os_cloud: str | None, db_url: str | None) -> None:
    """Place every department's requests on the operators its contracts allow.

    \b
    Hard rules, for every request (and for its standby copy when dr: true):
      1. a contract valid on --date with that operator (primary; backup for the
         standby, which must be on another operator than the primary);
      2. operator MLPS level >= the request's; secret: true -> dedicated operators;
      3. per zone and resource: placed (+ live usage) <= capacity x overcommit;
      4. ha: true -> spread over zones, at most ceil(count / zones) per zone;
      5. per contract: monthly cost <= its ceiling;
      6. residency: only zones at the department's site or above it
         (sites.yaml: township -> county -> city -> province);
      7. per site with a budget: monthly cost of its departments and those
         below it <= the budget.
    A request is placed whole or not at all. Among plans that place the most
    requests: the lowest total monthly cost, then the lowest peak zone use.
    \b
    Examples:
      yunshang plan --catalog examples/prefecture
      yunshang plan --catalog examples/prefecture --date 2027-01-15 --output json
      yunshang plan --catalog examples/prefecture --live --clouds clouds.yaml
      yunshang plan --catalog examples/prefecture --save --os-cloud person-center-engineer
                                                     # record it: "recorded plan 7 ..."
    """
    from yunshang.catalog import load_catalog
    from yunshang.placement import place_explained, plan_to_dict

    day = date_.date() if date_ else dt.date.today()
    catalog = load_catalog(catalog_dir)
    usage: tuple = ()
    excluded: dict[str, str] = {}
    notes: list[str] = []
    if save and not os_cloud:
        raise click.UsageError("--save needs --os-cloud NAME (the center engineer recording the plan, as Keystone "
                               "knows them; e.g. person-center-engineer)")
    if live:
        usage, excluded, notes = _live(catalog, clouds_file)
    identity = None
    if save and os_cloud:
        from cli.request import who
        from yunshang.authz import authorize

        identity = authorize(who(os_cloud, clouds_file), "plan.save")
    for d in departments:
        try:
            catalog.department(d)
        except KeyError:
            raise click.BadParameter(f"unknown department {d!r} in {catalog_dir}", param_hint="--department") \
                from None
    result, decisions = place_explained(catalog, day, usage, excluded=excluded)
    saved = _save(db_url, catalog, result, identity.actor, departments or None, live) if identity else None
    if output == "json":
        data = plan_to_dict(result)
        if live:
            data["live"] = {"excluded": excluded, "notes": notes}
        if saved is not None:
            data["recorded"] = saved.summary()
        echo_json(data)
        return
    click.echo(render_table(catalog, result, decisions, excluded, notes))
    if saved is not None:
        click.echo(f"\nrecorded plan {saved.id} (content hash {saved.content_hash[:12]}, catalog digest "
                   f"{saved.catalog_digest[:12]}) covering {', '.join(saved.departments)}; apply it: "
                   f"yunshang tenant apply DEPT --operator OP --plan {saved.id} (or stack up DEPT --plan {saved.id})")


def _save(db_url, catalog, result, actor: str, departments, live: bool):
    from yunshang.plans import record_plan
    from yunshang.store import open_store

    with open_store(db_url) as store:
        return record_plan(store, catalog, result, by=actor, departments=departments,
                           source="plan --save" + (" --live" if live else ""))


def _live(catalog, clouds_file: str | None):
    from yunshang.capacity import to_usage
    from yunshang.openstack.capacity import read_all

    snapshots = read_all(catalog, clouds_file)
    by_name = {s.provider: s for s in snapshots}
    excluded: dict[str, str] = {}
    zones: list = []
    notes = []
    for p in catalog.providers:
        snap = by_name.get(p.name)
        if snap is None:
            excluded[p.name] = "no live snapshot was returned for it"
        elif not snap.ok:
            excluded[p.name] = f"live capacity could not be read: {snap.error}"
        else:
            zones.extend(snap.zones)
            known = {z.name for z in p.zones}
            unknown = sorted({z.zone for z in snap.zones} - known)
            if unknown:
                notes.append(f"{p.name}: live zones {', '.join(unknown)} are not in the catalog (ignored)")
    return to_usage(zones), excluded, notes


def render_table(catalog, result, decisions, excluded: dict[str, str] | None = None,
                 notes: list[str] | None = None) -> str:
    """The plan for people: per department, where each request went and why."""
    from yunshang.sites import tree_of

    tree = tree_of(catalog)
    out: list[str] = [f"Plan for {result.date.isoformat()} (catalog {catalog.root})"]
    for name, why in sorted((excluded or {}).items()):
        out.append(f"  operator {name} left out: {why}")
    for n in notes or []:
        out.append(f"  note: {n}")
    placements = {(p.department, p.request, p.role): p for p in result.placements}
    by_dept: dict[str, list] = {}
    for d in decisions:
        by_dept.setdefault(d.department, []).append(d)
    spent_by_dept: dict[str, dict[str, float]] = {}      # one pass (was one per department: quadratic)
    for p in result.placements:
        per = spent_by_dept.setdefault(p.department, {})
        per[p.contract] = per.get(p.contract, 0.0) + p.monthly_cost_cny
    for dept in catalog.departments:
        rows = []
        spend = 0.0
        for d in by_dept.get(dept.name, []):
            p = placements.get((d.department, d.request, d.role))
            if p is None:
                rows.append([d.request, d.role, "UNPLACED", "", "", "", "", "", d.why])
                continue
            spend += p.monthly_cost_cny
            n = sum(c for _, c in p.zones)
            rows.append([d.request, d.role, p.provider, p.contract, " ".join(f"{z}:{c}" for z, c in p.zones),
                         p.site, n, f"{p.monthly_cost_cny:,.2f}", d.why])
        if not rows:
            continue
        out.append("")
        where = f", site {tree.resolve(dept.site)}" if catalog.sites else ""
        out.append(f"== {dept.name} {dept.display_name} (MLPS {dept.mlps_level}{where}) — {spend:,.2f} CNY/month")
        out.append(table(["request", "role", "operator", "contract", "zones", "site", "n", "CNY/month", "why"], rows))
        spent = spent_by_dept.get(dept.name, {})
        out.append("contracts: " + "; ".join(
            f"{c.id} {c.provider} {c.role} {spent.get(c.id, 0.0):,.0f} of {c.ceiling_cny_per_month:,.0f}"
            + ("" if c.valid_on(result.date) else f" (not valid on {result.date}: {c.start}..{c.end})")
            for c in dept.contracts))
    if result.unplaced:
        out.append("")
        out.append(f"Unplaced ({len(result.unplaced)}):")
        for u in result.unplaced:
            out.append(f"  {u.department}/{u.request} ({u.role}):")
            out.extend(f"    - {r}" for r in u.reasons)
    if tree.budgeted():
        from yunshang.sites import spend_by_site

        spent_at = spend_by_site(catalog, result)
        out.append("")
        out.append("Site budgets (monthly cost placed for the site and the sites below it)")
        out.append(table(["site", "tier", "placed CNY/month", "budget"],
                         [[s.name, s.tier, f"{spent_at[s.name]:,.2f}", f"{s.budget_cny_per_month:,.0f}"]
                          for s in tree.ordered() if s.budget_cny_per_month is not None]))
    site_of = {(p.name, z.name): tree.resolve(z.site) for p in catalog.providers for z in p.zones}
    out.append("")
    out.append("Zone utilisation (placed + live usage, of capacity x overcommit)")
    out.append(table(["operator", "zone", "site", "vcpu", "ram", "disk"],
                     [[u.provider, u.zone, site_of.get((u.provider, u.zone), ""), f"{u.vcpu_ratio:.1%}",
                       f"{u.ram_gb_ratio:.1%}", f"{u.disk_gb_ratio:.1%}"]
                      for u in result.utilization]))
    out.append("")
    out.append(f"Total: {result.total_monthly_cost_cny:,.2f} CNY/month; {len(result.placements)} placed, "
               f"{len(result.unplaced)} unplaced")
    return "\n".join(out)
