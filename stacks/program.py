"""The program body, importable so tests and `stack graph` run exactly what `pulumi up` runs."""
from __future__ import annotations

from typing import Mapping, Optional

import pulumi
import pulumi_openstack as openstack

from stacks.components.tenant import DepartmentTenant, DepartmentTenantArgs
from yunshang.tenant import TenantSpec


def operator_provider(spec: TenantSpec) -> openstack.Provider:
    """The operator's admin provider: its clouds.yaml entry named explicitly (never OS_CLOUD)."""
    return openstack.Provider(f"{spec.operator}-admin", cloud=spec.cloud)


def build_tenant(spec: TenantSpec, *, initial_passwords: Optional[Mapping[str, pulumi.Input[str]]] = None) -> DepartmentTenant:
    tenant = DepartmentTenant(
        spec.stack_name, DepartmentTenantArgs(spec=spec, admin_provider=operator_provider(spec),
                                              initial_passwords=initial_passwords))
    pulumi.export("project", spec.project.name)
    pulumi.export("operator", spec.operator)
    pulumi.export("network_cidr", spec.network.cidr)
    pulumi.export("servers", [s.name for s in spec.servers])
    return tenant


def initial_passwords(namespace: str = "yunshang") -> dict[str, pulumi.Output[str]]:
    """The stack's secret config ``initialPasswords`` ({user: password}) as secret Outputs per user
    (the component needs one input per user; the values stay secrets in the state)."""
    raw = pulumi.Config(namespace).get_object("initialPasswords") or {}
    return {str(u): pulumi.Output.secret(str(p)) for u, p in raw.items()}


def spec_from_config(*, catalog: str, department: str, operator: str, date: str,
                     management_cidr: str | None = None, root: str = ".") -> TenantSpec:
    """Stack config (inputs only) -> the core's TenantSpec: load catalog, place, derive."""
    import datetime as dt
    import os

    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.tenant import DEFAULT_MANAGEMENT_CIDR, tenant_spec

    path = catalog if os.path.isabs(catalog) else os.path.join(root, catalog)
    cat = load_catalog(path)
    day = dt.date.fromisoformat(date)
    return tenant_spec(cat, place(cat, day), department, operator,
                       management_cidr=management_cidr or DEFAULT_MANAGEMENT_CIDR)
