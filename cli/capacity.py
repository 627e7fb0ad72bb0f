"""``yunshang capacity``: live capacity and usage per operator and zone, from each cloud's Placement."""
from __future__ import annotations

import sys

import click

from cli.common import catalog_option, clouds_option, echo_json, load_catalog, output_option, table
from yunshang.capacity import RESOURCE_CLASSES


@click.group()
def capacity() -> None:
    """Live capacity and usage per operator and zone, read from each cloud's Placement.

    Each operator's cloud (clouds.yaml entry = the catalog's `cloud:` field) is read
    concurrently; an operator that cannot be read is marked UNREACHABLE with the
    reason, and the others are still reported.

    \b
      yunshang capacity show --catalog examples/prefecture --clouds ~/.local/share/yunshang/devcloud/clouds.yaml
      yunshang capacity show --operator telecom -o json
    """


def _snapshot_json(s) -> dict:
    return {
        "operator": s.provider, "ok": s.ok, "error": s.error or None,
        "taken_at": s.taken_at.isoformat(), "duration_seconds": round(s.duration_seconds, 3),
        "zones": _zones_json(s.zones),
        "instances": {z: n for z, n in s.instances},
        "quotas": [{"department": q.department, "project_id": q.project_id, "service": q.service,
                    "resource": q.resource, "limit": q.limit, "in_use": q.in_use} for q in s.quotas],
    }


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _zones_json(zones) -> dict:
    out: dict[str, dict] = {}
    for z in zones:
        out.setdefault(z.zone, {})[z.resource_class] = {
            "total": z.total, "reserved": z.reserved, "allocation_ratio": z.allocation_ratio,
            "capacity": z.capacity, "used": z.used, "free": z.free}
    return out


@capacity.command()
@catalog_option
@clouds_option
@click.option("--operator", "operators", multiple=True, metavar="OP",
              help="Only these operators (repeatable; provider name or cloud name). Default: all in the catalog.")
@output_option
def show(catalog_dir: str, clouds_file: str | None, operators: tuple[str, ...], output: str) -> None:
    """Per operator and zone: Placement total, reserved, allocation ratio, capacity, used, free.

    Capacity = (total - reserved) x allocation ratio; units are Placement's (VCPU, MEMORY_MB, DISK_GB).
    Exit status 4 when any operator could not be read (the others are still shown).
    """
    from yunshang.openstack.capacity import read_all

    catalog = load_catalog(catalog_dir)
    known = {p.name for p in catalog.providers} | {p.cloud for p in catalog.providers}
    unknown = [o for o in operators if o not in known]
    if unknown:
        from yunshang.errors import NotFound

        raise NotFound(f"operator(s) {', '.join(unknown)} not in {catalog_dir}/providers.yaml "
                       f"(known: {', '.join(sorted(p.name for p in catalog.providers))})")
    n = len([p for p in catalog.providers if not operators or p.name in operators or p.cloud in operators])
    with click.progressbar(length=1, label=f"reading {n} operator(s)", file=sys.stderr) as bar:
        # quotas of the catalog's departments only (not every tagged project a cloud happens to hold)
        snaps = read_all(catalog, clouds_file, operators or None,
                         departments=tuple(d.name for d in catalog.departments))
        bar.update(1)
    if output == "json":
        echo_json({"operators": [_snapshot_json(s) for s in snaps]})
    else:
        rows: list[tuple] = []
        for s in snaps:
            if not s.ok:
                rows.append((s.provider, "-", "UNREACHABLE", "", "", "", "", "", s.error))
                continue
            for z in s.zones:
                if z.resource_class not in RESOURCE_CLASSES:
                    continue
                rows.append((s.provider, z.zone, z.resource_class, z.total, z.reserved, f"{z.allocation_ratio:g}",
                             _num(z.capacity), z.used, _num(z.free)))
        click.echo(table(["operator", "zone", "resource", "total", "reserved", "ratio", "capacity", "used", "free"],
                         rows))
        insts = [f"{s.provider}: " + ", ".join(f"{z or '?'}={n}" for z, n in s.instances) for s in snaps
                 if s.ok and s.instances]
        if insts:
            click.echo("\ninstances per zone: " + "; ".join(insts))
    if any(not s.ok for s in snaps):
        raise SystemExit(4)
