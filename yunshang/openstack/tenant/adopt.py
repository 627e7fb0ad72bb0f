"""Adopt a brownfield project: catalog files for it, and a Pulumi import file of its resources."""
from __future__ import annotations

import datetime as dt
import re

from yunshang.capacity import CONTRACT_TAG_PREFIX, DEPARTMENT_TAG_PREFIX, MLPS_TAG_PREFIX
from yunshang.errors import NotFound
from yunshang.openstack import connect
from yunshang.openstack.tenant.base import find_project
from yunshang.openstack.tenant.engine import read_tenant
from yunshang.secrules import neutron_rule
from yunshang.tenant import KIND, kind_rank


def adopt_project(cloud: str, operator: str, project: str, clouds_file: str | None, *,
                  today: dt.date | None = None) -> tuple[dict, dict, dict]:
    """Read an existing project; return (department file, template file, Pulumi import file) as data.

    The department file is in catalog format (contracts from ``contract:`` tags, or a placeholder
    for the engineer to fill in); servers are grouped into requests by name (``<name>-NN``) and
    flavor; the template carries the flavors as sizes and the project's ingress/egress rules."""
    conn = connect(cloud, clouds_file)
    p = find_project(conn, project)
    if p is None:
        raise NotFound(f"operator {operator} (cloud {cloud}): no project named {project!r}")
    tags = list(p.tags or [])
    dept = next((t[len(DEPARTMENT_TAG_PREFIX):] for t in tags if t.startswith(DEPARTMENT_TAG_PREFIX)), None) \
        or (project[5:] if project.startswith("dept-") else project)
    level = next((int(t[len(MLPS_TAG_PREFIX):]) for t in tags if t.startswith(MLPS_TAG_PREFIX)), 3)
    obs = read_tenant(conn, project, None, None)
    today = today or dt.date.today()
    flavors = {f.name: f for f in conn.compute.flavors(details=True, is_public=None)}
    # requests: servers grouped by base name and flavor
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for (kind, name), it in sorted(obs.items.items()):
        if kind != "server":
            continue
        base = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        groups.setdefault((base, it.field("flavor")), []).append((name, it.field("availability_zone")))
    sizes, requests = {}, []
    for (base, flavor), members in sorted(groups.items()):
        f = flavors.get(flavor)
        size = _size_name(f, flavor)
        if f is not None:
            sizes[size] = {"vcpu": f.vcpus, "ram_gb": max(1, f.ram // 1024), "disk_gb": f.disk}
        zones = sorted({z for _, z in members})
        requests.append({"name": _slug(base), "template": f"adopted-{_slug(dept)}", "size": size,
                         "count": len(members), "ha": len(zones) > 1})
    users = []
    for (kind, name), _ in sorted(obs.items.items()):
        if kind == "role_assignment":
            uname, role = name.rsplit("/", 1)
            users.append({"name": uname, "role": role})
    contracts = [{"id": t[len(CONTRACT_TAG_PREFIX):], "provider": operator, "role": "primary",
                  "start": today.isoformat(), "end": today.replace(year=today.year + 3).isoformat(),
                  "ceiling_cny_per_month": 0} for t in tags if t.startswith(CONTRACT_TAG_PREFIX)] or \
        [{"id": f"ADOPTED-{_slug(dept).upper()}-{operator.upper()}", "provider": operator, "role": "primary",
          "start": today.isoformat(), "end": today.replace(year=today.year + 3).isoformat(),
          "ceiling_cny_per_month": 0}]
    department = {"name": _slug(dept), "display_name": p.description or dept, "mlps_level": level,
                  "contracts": contracts, "requests": requests, "users": users}
    ingress, egress = [], []
    for g in conn.network.security_groups(project_id=obs.project_id):
        if g.name == "default":
            continue
        for r in g.security_group_rules or []:
            rs = neutron_rule(r)
            if rs.ethertype != "IPv4" or rs.remote_group is not None:
                continue
            d = {"protocol": rs.protocol or "any", "remote_cidr": rs.remote_cidr}
            if rs.port_min is not None:
                d.update({"port_min": rs.port_min, "port_max": rs.port_max})
            (ingress if rs.direction == "ingress" else egress).append(d)
    fips_per_server: dict[str, int] = {}
    for (kind, _name), it in obs.items.items():
        if kind == "floating_ip":
            srv = it.field("server")
            fips_per_server[srv] = fips_per_server.get(srv, 0) + 1
    images = sorted({it.field("image") for (k, _), it in obs.items.items() if k == "server"})
    template = {"name": f"adopted-{_slug(dept)}", "image": images[0] if images else "cirros",
                "floating_ips": max(fips_per_server.values()) if fips_per_server else 0,
                "sizes": sizes or {"small": {"vcpu": 1, "ram_gb": 1, "disk_gb": 1}},
                "ingress": _dedupe(ingress), "egress": _dedupe(egress)}
    return department, template, import_file(obs)


def import_file(obs) -> dict:
    """``pulumi import --file`` document of the observed tenant's importable objects, in create order."""
    return {"resources": [
        {"type": KIND[kind].pulumi_type, "name": name, "id": KIND[kind].import_id(obs.ids[(kind, name)])}
        for (kind, name) in sorted(obs.items, key=lambda k: (kind_rank(k[0]), k[1]))
        if kind in KIND and KIND[kind].importable]}


def _size_name(f, flavor: str) -> str:
    if f is None:
        return _slug(flavor)
    return f"c{f.vcpus}r{max(1, f.ram // 1024)}d{f.disk}"


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", s.lower()).strip("-") or "x"


def _dedupe(rules: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rules:
        k = tuple(sorted(r.items()))
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out
