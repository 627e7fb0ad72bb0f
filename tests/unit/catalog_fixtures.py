"""Builders for small catalogs: as YAML files (catalog tests) and as model objects (placement tests)."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import yaml

from yunshang.model import (
    Catalog, Contract, Department, Overcommit, Prices, Provider, ProviderSla, Request, Size, Template, Zone,
    frozen_mapping,
)

DAY = dt.date(2026, 11, 26)

PROVIDERS = {"providers": [
    {"name": "telecom", "cloud": "telecom", "dedicated": False, "mlps_level": 3,
     "sla": {"availability": 0.9995, "rto_minutes": 30, "rpo_minutes": 15},
     "prices": {"vcpu": 30, "ram_gb": 10, "disk_gb": 0.5, "floating_ip": 25},
     "zones": [{"name": "az1", "vcpu": 64, "ram_gb": 256, "disk_gb": 4000,
                "overcommit": {"vcpu": 4.0, "ram_gb": 1.0, "disk_gb": 1.0}},
               {"name": "az2", "vcpu": 64, "ram_gb": 256, "disk_gb": 4000}]},
    {"name": "govcloud", "cloud": "govcloud", "dedicated": True, "mlps_level": 4,
     "sla": {"availability": 0.9999, "rto_minutes": 15, "rpo_minutes": 5},
     "prices": {"vcpu": 42, "ram_gb": 14, "disk_gb": 0.8, "floating_ip": 30},
     "zones": [{"name": "az1", "vcpu": 32, "ram_gb": 128, "disk_gb": 2000}]},
]}

DEPARTMENT = {
    "name": "health", "display_name": "卫健委", "mlps_level": 3,
    "contracts": [
        {"id": "WJ-1", "provider": "telecom", "role": "primary", "start": dt.date(2026, 1, 1),
         "end": dt.date(2027, 12, 31), "ceiling_cny_per_month": 50000,
         "sla_credits": [{"below": 0.9995, "credit_ratio": 0.05}]},
        {"id": "WJ-2", "provider": "govcloud", "role": "backup", "start": dt.date(2026, 1, 1),
         "end": dt.date(2027, 12, 31), "ceiling_cny_per_month": 20000},
    ],
    "requests": [
        {"name": "his", "template": "web", "size": "small", "count": 2, "ha": True, "dr": True},
        {"name": "secret-db", "template": "web", "size": "small", "count": 1, "secret": True},
    ],
    "users": [{"name": "wj-admin", "role": "admin", "email": "wj@example.cn"}],
    "probes": [{"name": "his", "kind": "http", "target": "http://127.0.0.1:18111/"}],
}

TEMPLATE = {
    "name": "web", "image": "cirros", "floating_ips": 1,
    "sizes": {"small": {"vcpu": 2, "ram_gb": 4, "disk_gb": 50}},
    "ingress": [{"protocol": "tcp", "port": 443, "remote_cidr": "0.0.0.0/0", "description": "https"}],
    "egress": [{"protocol": "any", "remote_cidr": "10.0.0.0/8"}],
    "volumes": [{"name": "logs", "size_gb": 10}],
    "user_data": "#cloud-config\nhostname: {{ instance }}\n",
}


def write_catalog(root: Path, providers=None, departments=None, templates=None) -> Path:
    """Write a catalog directory; each argument defaults to the small valid one above."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "departments").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    providers = copy.deepcopy(PROVIDERS) if providers is None else providers
    departments = [copy.deepcopy(DEPARTMENT)] if departments is None else departments
    templates = [copy.deepcopy(TEMPLATE)] if templates is None else templates
    (root / "providers.yaml").write_text(yaml.safe_dump(providers, sort_keys=False, allow_unicode=True))
    for d in departments:
        (root / "departments" / f"{d['name']}.yaml").write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True))
    for t in templates:
        (root / "templates" / f"{t['name']}.yaml").write_text(yaml.safe_dump(t, sort_keys=False, allow_unicode=True))
    return root


# ----------------------------------------------------------------------------- model builders (placement)
def provider(name: str, zones=(("az1", 100, 400, 10000), ("az2", 100, 400, 10000)), *, mlps: int = 3,
             dedicated: bool = False, prices=(30, 10, 0.5, 25), overcommit: float = 1.0) -> Provider:
    return Provider(
        name=name, cloud=name, dedicated=dedicated, mlps_level=mlps, sla=ProviderSla(0.9995, 30, 15),
        prices=Prices(*prices),
        zones=tuple(Zone(z, v, r, d, Overcommit(overcommit, overcommit, overcommit)) for z, v, r, d in zones))


def contract(cid: str, prov: str, role: str = "primary", *, start=dt.date(2026, 1, 1), end=dt.date(2027, 12, 31),
             ceiling: float = 1e9) -> Contract:
    return Contract(cid, prov, role, start, end, ceiling)


def request(name: str, count: int = 1, *, size: str = "small", level: int = 3, ha: bool = False, dr: bool = False,
            secret: bool = False, template: str = "web") -> Request:
    return Request(name, template, size, count, level, ha, dr, secret)


def department(name: str, contracts, requests, level: int = 3) -> Department:
    return Department(name, name, level, tuple(contracts), tuple(requests))


def template(name: str = "web", sizes=None, floating_ips: int = 0) -> Template:
    sizes = sizes or {"small": Size(2, 4, 50), "large": Size(8, 32, 500)}
    return Template(name=name, file=f"templates/{name}.yaml", sizes=frozen_mapping(sizes), floating_ips=floating_ips)


def catalog(providers, departments, templates=None) -> Catalog:
    templates = templates or [template()]
    return Catalog(root="test", providers=tuple(providers), departments=tuple(departments),
                   templates=frozen_mapping({t.name: t for t in templates}))
