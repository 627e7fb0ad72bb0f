"""The SDK engine of every tenant kind, in the core's create order (``yunshang.tenant.KINDS``)."""
from __future__ import annotations

from yunshang.openstack.tenant.base import KindEngine
from yunshang.openstack.tenant.compute import Server, ServerGroup
from yunshang.openstack.tenant.flavor import Flavor
from yunshang.openstack.tenant.floating_ip import FloatingIp
from yunshang.openstack.tenant.identity import Project, RoleAssignment, User
from yunshang.openstack.tenant.network import Network, Router, RouterInterface, Subnet
from yunshang.openstack.tenant.port import Port
from yunshang.openstack.tenant.quota import Quota
from yunshang.openstack.tenant.secgroup import SecurityGroup, SecurityGroupRule
from yunshang.openstack.tenant.volume import Volume
from yunshang.tenant import KINDS

_ALL: dict[str, KindEngine] = {e.kind: e for e in (
    Project(), User(), RoleAssignment(), Quota(), Flavor(), Network(), Subnet(), Router(), RouterInterface(),
    SecurityGroup(), SecurityGroupRule(), ServerGroup(), Port(), Server(), Volume(), FloatingIp())}
ENGINES: tuple[KindEngine, ...] = tuple(_ALL[k.name] for k in KINDS)   # KeyError at import: a kind without engine
ENGINE: dict[str, KindEngine] = {e.kind: e for e in ENGINES}
