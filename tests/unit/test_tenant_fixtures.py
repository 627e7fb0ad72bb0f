"""Small hand-built catalogs and plans for the tenant/stack/admission unit tests (pure data; no tests here)."""
from __future__ import annotations

import datetime as dt

from yunshang.model import (Catalog, Contract, Department, Overcommit, Placement, Plan, Prices, Provider,
                            ProviderSla, Request, Rule, Size, Template, User, VolumeSpec, Zone, frozen_mapping)

DAY = dt.date(2026, 12, 1)

USER_DATA = """#cloud-config
hostname: {{ instance }}
runcmd:
  - [echo, "{{ department }} {{ zone }} {{ index }}"]
"""
WEB_HEAD = """name: web
image: cirros
floating_ips: 1
sizes:
  small: {vcpu: 1, ram_gb: 1, disk_gb: 1}
user_data: |
"""


def web_source(user_data: str) -> str:
    """The template file text as it would be on disk (user_data as a block scalar from line 7)."""
    return WEB_HEAD + "".join("  " + line + "\n" for line in user_data.splitlines())


def provider(name: str, zones=("az1", "az2"), level=3, dedicated=False, ext="public") -> Provider:
    return Provider(name=name, cloud=name, dedicated=dedicated, mlps_level=level,
                    sla=ProviderSla(0.9995, 30, 15), prices=Prices(30, 10, 0.5, 25),
                    zones=tuple(Zone(z, 64, 256, 2000, Overcommit(4.0, 1.0, 1.0)) for z in zones),
                    external_network=ext)


def templates(user_data: str | None = None, source: str | None = None) -> dict:
    web = Template(
        name="web", file="templates/web.yaml", sizes=frozen_mapping({"small": Size(1, 1, 1)}), floating_ips=1,
        ingress=(Rule("tcp", 443, 443, "0.0.0.0/0", "https"), Rule("tcp", 22, 22, "0.0.0.0/0", "ssh from anywhere"),
                 Rule("tcp", 22, 22, "10.250.0.0/24", "ssh from bastion")),
        egress=(Rule("tcp", 443, 443, "0.0.0.0/0", "https out"),),
        volumes=(VolumeSpec("logs", 1),),
        user_data=USER_DATA if user_data is None else user_data,
        source=web_source(USER_DATA if user_data is None else user_data) if source is None else source)
    db = Template(
        name="db", file="templates/db.yaml", sizes=frozen_mapping({"small": Size(1, 2, 2)}), floating_ips=0,
        ingress=(Rule("any", None, None, "0.0.0.0/0", "everything (bad template)"),),
        egress=(), volumes=(), user_data="", source="")
    return {"web": web, "db": db}


def department(name: str, cidr_index: int = 0, level: int = 3, providers=("telecom", "unicom")) -> Department:
    contracts = tuple(Contract(f"{name[:2].upper()}-{i}", p, "primary" if i == 0 else "backup",
                               dt.date(2026, 1, 1), dt.date(2028, 12, 31), 100000)
                      for i, p in enumerate(providers))
    return Department(
        name=name, display_name=name.upper(), mlps_level=level, contracts=contracts,
        requests=(Request("portal", "web", "small", 2, level, ha=True, dr=True),
                  Request("db", "db", "small", 1, level)),
        users=(User("ops", "member", f"ops@{name}.example"), User("boss", "admin", "")),
        cidr_index=cidr_index)


def catalog(departments=None, tpl=None) -> Catalog:
    depts = departments or (department("health", 1), department("tourism", 2))
    return Catalog(root="/tmp/test-catalog", providers=(provider("telecom"), provider("unicom"),
                                                       provider("govcloud", ("az1",), 4, True, "gov-extranet")),
                   departments=tuple(depts), templates=frozen_mapping(tpl or templates()))


def plan(cat: Catalog, day: dt.date = DAY) -> Plan:
    """Portal primary on telecom over az1+az2, standby on unicom; db primary on telecom az1."""
    ps = []
    for d in cat.departments:
        c0, c1 = d.contracts[0].id, d.contracts[1].id
        ps.append(Placement(d.name, "portal", "primary", d.contracts[0].provider, c0, (("az1", 1), ("az2", 1)),
                            2, 2, 2, 2, 100.0))
        ps.append(Placement(d.name, "portal", "standby", d.contracts[1].provider, c1, (("az1", 1), ("az2", 1)),
                            2, 2, 2, 2, 100.0))
        ps.append(Placement(d.name, "db", "primary", d.contracts[0].provider, c0, (("az1", 1),), 1, 2, 2, 0, 50.0))
    return Plan(date=day, placements=tuple(ps), unplaced=(), utilization=(), total_monthly_cost_cny=0.0)
