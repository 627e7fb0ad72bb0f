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
    pulumi.export("plan", spec.plan_id)
    pulumi.export("planHash", spec.plan_hash)
    return tenant


def initial_passwords(namespace: str = "yunshang") -> dict[str, pulumi.Output[str]]:
    """The stack's secret config ``initialPasswords`` ({user: password}) as secret Outputs per user
    (the component needs one input per user; the values stay secrets in the state)."""
    raw = pulumi.Config(namespace).get_object("initialPasswords") or {}
    return {str(u): pulumi.Output.secret(str(p)) for u, p in raw.items()}


def spec_from_config(*, catalog: str, department: str, operator: str, plan: str, plan_hash: str,
                     management_cidr: str | None = None, root: str = ".", db_url: str | None = None) -> TenantSpec:
    """Stack config (inputs only) -> the core's TenantSpec of the recorded plan it names (read from
    the lifecycle store, $YUNSHANG_DB): never re-placed. A plan whose content hash is not the one
    the config names, or that no longer applies to the catalog today, is refused."""
    import datetime as dt
    import os

    from yunshang.catalog import load_catalog
    from yunshang.plans import PlanInvalid, applicable_plan, plan_specs
    from yunshang.store import open_store

    path = catalog if os.path.isabs(catalog) else os.path.join(root, catalog)
    cat = load_catalog(path)
    with open_store(db_url) as store:
        record = store.get_plan(int(plan))
    if record.content_hash != plan_hash:
        raise PlanInvalid(record.id, [f"the stack config names content hash {plan_hash[:12]}, the recorded plan "
                                      f"has {record.content_hash[:12]}"])
    cat, placed, _ = applicable_plan(cat, record, dt.date.today(), [department])
    (spec,) = plan_specs(record, cat, placed, department, [operator], management_cidr)
    return spec
