"""What the devcloud is made of: operators, zones, ports, process names (pure data, no I/O but reading YAML).

Each operator is its own OpenStack cloud (own Keystone, own endpoints on its
own ports, own credentials). One MariaDB (a database set per operator, named
``<operator>_<service>``) and one RabbitMQ (a vhost per operator) are shared.

Ports (all on 127.0.0.1), chosen to stay clear of defaults other parts of the
project or the machine use (2222 sshd hosts, 5432 PostgreSQL, 9090/9093
Prometheus/Alertmanager, 9180-9199 exporters, 3306/5672/4369 an apt-started
MariaDB/RabbitMQ):

    shared  MariaDB 13306, RabbitMQ AMQP 15672, Erlang dist 25673, epmd 14369
    operator i (0, 1, 2) base = 17000 + 100 * i:
            keystone base+0, nova base+74, cinder base+76, placement base+78,
            glance base+92, neutron base+96
    e.g. telecom: 17000, 17074, 17076, 17078, 17092, 17096
    center (the center's own identity: a Keystone only, no other service) at the block
            after the last operator's: keystone 17300
A second devcloud dir on the same machine shifts every port by a port offset
(``--port-offset`` / $YUNSHANG_DEVCLOUD_PORT_OFFSET, recorded in its state.json).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from yunshang.yamlload import load_yaml

MAX_OPERATORS = 3
DEFAULT_OPERATORS = 2

MARIADB_PORT = 13306
RABBIT_PORT = 15672
RABBIT_DIST_PORT = 25673
EPMD_PORT = 14369
OPERATOR_PORT_BASE = 17000
OPERATOR_PORT_STRIDE = 100
SERVICE_PORT_OFFSETS = {"keystone": 0, "nova_api": 74, "cinder_api": 76, "placement": 78, "glance": 92, "neutron": 96}

# The center's own Keystone (people of people.yaml; the API validates their tokens there).
CENTER = "center"
from yunshang.authz import CENTER_PROJECT as CENTER_PROJECT  # noqa: E402  (re-exported: roles are held there)
from yunshang.authz import DEPARTMENT_PROJECT_PREFIX as DEPARTMENT_PROJECT_PREFIX  # noqa: E402


def center_spec(port_offset: int = 0) -> "OperatorSpec":
    """The center's identity as an operator-like spec (port block MAX_OPERATORS, no zones, Keystone only)."""
    return OperatorSpec(CENTER, MAX_OPERATORS, (), port_offset=port_offset)


def person_cloud(name: str) -> str:
    """The clouds.yaml entry of a person of people.yaml."""
    return f"person-{name}"


# Inventory scale: Placement gets catalog numbers divided by this. The fake virt
# driver consumes nothing real, so the catalog's figures are reported as they are.
INVENTORY_SCALE = 1
# What nova reserves on each compute node (nova's own default for memory).
RESERVED_HOST_MEMORY_MB = 512
RESERVED_HOST_CPUS = 0
RESERVED_HOST_DISK_MB = 0

DB_SERVICES = ("keystone", "placement", "nova_api", "nova", "nova_cell0", "glance", "neutron", "cinder")
# Web APIs under gunicorn, in start order: (process name, wsgi module, config env var builder key)
API_SERVICES = ("placement", "nova_api", "glance", "neutron", "cinder_api")
DAEMONS = ("nova-conductor", "nova-scheduler", "cinder-scheduler", "cinder-volume")

# TEST-NET ranges for each operator's external ("public") network: no traffic ever goes there.
EXTERNAL_CIDRS = ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")

FLAVORS = (("m1.tiny", 1, 512, 1), ("m1.small", 1, 2048, 20), ("m1.medium", 2, 4096, 40),
           ("m1.large", 4, 8192, 80))


@dataclass(frozen=True)
class ZoneSpec:
    name: str
    vcpu: int
    ram_gb: int
    disk_gb: int
    cpu_ratio: float = 1.0
    ram_ratio: float = 1.0
    disk_ratio: float = 1.0

    @property
    def memory_mb(self) -> int:
        return self.ram_gb * 1024 // INVENTORY_SCALE


@dataclass(frozen=True)
class OperatorSpec:
    name: str                 # = clouds.yaml cloud name
    index: int                # position -> port block
    zones: tuple[ZoneSpec, ...]
    external_network: str = "public"
    port_offset: int = 0      # added to every port: a second devcloud dir on the same machine

    def port(self, service: str) -> int:
        return (OPERATOR_PORT_BASE + OPERATOR_PORT_STRIDE * self.index + SERVICE_PORT_OFFSETS[service]
                + self.port_offset)

    @property
    def ports(self) -> dict[str, int]:
        return {s: self.port(s) for s in SERVICE_PORT_OFFSETS}

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.port('keystone')}/v3"

    @property
    def external_cidr(self) -> str:
        return EXTERNAL_CIDRS[self.index]

    def db(self, service: str) -> str:
        return f"{self.name}_{service}"

    def compute_host(self, zone: str) -> str:
        return f"{self.name}-{zone}"

    def process_names(self) -> tuple[str, ...]:
        """Every process of this operator, in start order."""
        return (("keystone",) + API_SERVICES + DAEMONS
                + tuple(f"nova-compute-{z.name}" for z in self.zones))


@dataclass(frozen=True)
class Layout:
    """Where the devcloud lives and what it runs."""

    dir: Path
    venv: Path
    operators: tuple[OperatorSpec, ...] = field(default_factory=tuple)

    @property
    def clouds_file(self) -> Path:
        return self.dir / "clouds.yaml"

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def operator(self, name: str) -> OperatorSpec:
        for o in self.operators:
            if o.name == name:
                return o
        raise KeyError(name)


def default_port_offset() -> int:
    """$YUNSHANG_DEVCLOUD_PORT_OFFSET (default 0): shifts every port, for a second devcloud dir."""
    return int(os.environ.get("YUNSHANG_DEVCLOUD_PORT_OFFSET", "0") or 0)


def default_dir() -> Path:
    env = os.environ.get("YUNSHANG_DEVCLOUD_DIR")
    return Path(env).expanduser() if env else Path.home() / ".local/share/yunshang/devcloud"


def default_venv() -> Path:
    """The services' own venv (kept apart from the project's; shared by every devcloud dir)."""
    env = os.environ.get("YUNSHANG_DEVCLOUD_VENV")
    return Path(env).expanduser() if env else Path.home() / ".local/share/yunshang/services-venv"


def default_catalog() -> Path:
    env = os.environ.get("YUNSHANG_CATALOG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "examples" / "prefecture"


FALLBACK_ZONES = (ZoneSpec("az1", 64, 256, 4000, 4.0, 1.0, 1.0), ZoneSpec("az2", 64, 256, 4000, 4.0, 1.0, 1.0))
FALLBACK_OPERATORS = ("telecom", "unicom", "govcloud")


def read_operator_specs(catalog_dir: Path | str | None, count: int) -> tuple[OperatorSpec, ...]:
    """The first ``count`` providers of ``<catalog>/providers.yaml`` as devcloud operators.

    Operator name = the provider's ``cloud:`` field (the clouds.yaml entry).
    Without a providers.yaml: telecom/unicom/govcloud with two zones each.
    """
    from yunshang.errors import CatalogInvalid, Problem

    if not 1 <= count <= MAX_OPERATORS:
        raise ValueError(f"--operators must be 1..{MAX_OPERATORS}, got {count}")
    path = Path(catalog_dir or default_catalog()) / "providers.yaml"
    if not path.exists():
        return tuple(OperatorSpec(n, i, FALLBACK_ZONES) for i, n in enumerate(FALLBACK_OPERATORS[:count]))
    try:
        data = load_yaml(path) or {}
        ops = []
        for i, p in enumerate((data.get("providers") or [])[:count]):
            zones = []
            for z in p.get("zones") or []:
                oc = z.get("overcommit") or {}
                zones.append(ZoneSpec(
                    name=str(z["name"]), vcpu=int(z["vcpu"]) // INVENTORY_SCALE, ram_gb=int(z["ram_gb"]),
                    disk_gb=int(z["disk_gb"]) // INVENTORY_SCALE, cpu_ratio=float(oc.get("vcpu", 1.0)),
                    ram_ratio=float(oc.get("ram_gb", 1.0)), disk_ratio=float(oc.get("disk_gb", 1.0))))
            ops.append(OperatorSpec(name=str(p.get("cloud") or p["name"]), index=i,
                                    zones=tuple(zones) or FALLBACK_ZONES,
                                    external_network=str(p.get("external_network") or "public")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogInvalid([Problem(str(path), "providers",
                                      f"cannot read operators for the devcloud: {exc}")]) from None
    if len(ops) < count:
        raise CatalogInvalid([Problem(str(path), "providers",
                                      f"{count} operators asked for, the catalog has {len(ops)}")])
    return tuple(ops)
