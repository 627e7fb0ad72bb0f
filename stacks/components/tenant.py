"""DepartmentTenant: one department's tenant on one operator, built from a TenantSpec.

It decides nothing: every name, number and rule comes from ``yunshang.tenant.TenantSpec``.
Every child is ``parent=self`` and bound to an explicit ``openstack.Provider`` for the
operator's cloud (clouds.yaml entry): the ``admin`` provider (identity, quotas, flavors,
look-ups) given in the args, and a project-scoped provider the component creates once the
project exists (network, security groups, servers, volumes, floating IPs are the project's
own). Nothing falls back to OS_CLOUD or other environment. Each kind of the core's
``KINDS`` is declared by ``_declare_<kind>`` in the core's order, with the resource classes of
the kind's declared Pulumi types.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_openstack as openstack

from yunshang.stackpolicy import project_cloud
from yunshang.tenant import KIND, KINDS, MANAGED_BY, OPERATOR_ACCESS_ROLE, TenantSpec, rule_label

TYPE = "yunshang:tenant:DepartmentTenant"


def resource_class(token: str):
    """The pulumi-openstack class of a resource type token ("openstack:identity/project:Project")."""
    _, path, name = token.split(":")
    return getattr(getattr(openstack, path.split("/")[0]), name)


def _cls(kind: str, i: int = 0):
    return resource_class(KIND[kind].pulumi_types[i])


@dataclass
class DepartmentTenantArgs:
    spec: TenantSpec
    admin_provider: openstack.Provider       # bound to spec.cloud, admin-scoped
    # user name -> initial password (Pulumi secret Outputs); users without one get none
    initial_passwords: Optional[Mapping[str, pulumi.Input[str]]] = None


class DepartmentTenant(pulumi.ComponentResource):
    """Declares each kind of ``yunshang.tenant.KINDS`` in order, through ``_declare_<kind>``."""

    project: openstack.identity.Project
    project_provider: openstack.Provider

    def __init__(self, name: str, args: DepartmentTenantArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        self.spec = spec = args.spec
        self.args = args
        self.admin = pulumi.ResourceOptions(parent=self, provider=args.admin_provider)
        self.admin_invoke = pulumi.InvokeOutputOptions(provider=args.admin_provider)
        self.tags = [MANAGED_BY]
        self.res: dict[tuple[str, str], pulumi.Resource] = {}
        self._own: Optional[pulumi.ResourceOptions] = None
        for kind in KINDS:
            getattr(self, f"_declare_{kind.name}")()
        self.register_outputs({"project_id": self.project.id, "network_cidr": spec.network.cidr})

    def _add(self, kind: str, name: str, resource: pulumi.Resource) -> pulumi.Resource:
        self.res[(kind, name)] = resource
        return resource

    @property
    def own(self) -> pulumi.ResourceOptions:
        """The project's own scope: a provider scoped to the project, once the project exists and
        the operator's account holds its access role there."""
        if self._own is None:
            # Scoped by its own clouds.yaml entry (stacks/automation.py derives it): with `cloud` set the
            # Terraform provider ignores tenant_id, so everything would land in the admin project.
            self.project_provider = openstack.Provider(
                f"{self.spec.operator}-{self.spec.project.name}",
                cloud=project_cloud(self.spec.cloud, self.spec.project.name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.operator_access, self.project]))
            self._own = pulumi.ResourceOptions(parent=self, provider=self.project_provider)
        return self._own

    # ---- identity (admin scope)
    def _declare_project(self) -> None:
        p = self.spec.project
        self.project = self._add("project", p.name, _cls("project")(
            p.name, name=p.name, description=p.description, tags=list(p.tags), opts=self.admin))

    def _declare_user(self) -> None:
        passwords = self.args.initial_passwords or {}
        for u in self.spec.users:
            self._add("user", u.name, _cls("user")(
                u.name, name=u.name, description=u.description, default_project_id=self.project.id,
                extra={"email": u.email} if u.email else None, password=passwords.get(u.name),
                # the bridge's raw-state delta repeats the password in clear: keep it a secret too;
                # an *initial* password: once set, the user owns it (no reset by a later up)
                opts=pulumi.ResourceOptions.merge(self.admin, pulumi.ResourceOptions(
                    additional_secret_outputs=["password", "__pulumi_raw_state_delta"],
                    ignore_changes=["password"]))))

    def _declare_role_assignment(self) -> None:
        spec = self.spec
        role_names = sorted({a.role for a in spec.role_assignments} | {OPERATOR_ACCESS_ROLE})
        role_id = {r: openstack.identity.get_role_output(name=r, opts=self.admin_invoke).id for r in role_names}
        for a in spec.role_assignments:
            self._add("role_assignment", f"{a.user}/{a.role}", _cls("role_assignment")(
                f"{a.user}/{a.role}", project_id=self.project.id, user_id=self.res[("user", a.user)].id,
                role_id=role_id[a.role], opts=self.admin))
        me = openstack.identity.get_auth_scope_output(name="operator", opts=self.admin_invoke)
        self.operator_access = _cls("role_assignment")(
            f"operator/{OPERATOR_ACCESS_ROLE}", project_id=self.project.id, user_id=me.user_id,
            role_id=role_id[OPERATOR_ACCESS_ROLE], opts=self.admin)

    def _declare_quota(self) -> None:
        """Only the fields the spec names (the others keep the cloud's defaults)."""
        q = self.spec.quotas.as_dict()
        for i, service in enumerate(("compute", "network", "volume")):
            self._add("quota", service, _cls("quota", i)(service, project_id=self.project.id, **q[service],
                                                          opts=self.admin))

    def _declare_flavor(self) -> None:
        self.flavor_access = []
        for f in self.spec.flavors:
            fl = self._add("flavor", f.name, _cls("flavor")(f.name, name=f.name, vcpus=f.vcpus, ram=f.ram_mb,
                                                             disk=f.disk_gb, is_public=False, opts=self.admin))
            self.flavor_access.append(_cls("flavor", 1)(f"{f.name}/access", flavor_id=fl.id,
                                                        tenant_id=self.project.id, opts=self.admin))

    # ---- the project's own scope
    def _declare_network(self) -> None:
        n = self.spec.network
        self._add("network", n.name, _cls("network")(n.name, name=n.name, tags=self.tags, opts=self.own))

    def _declare_subnet(self) -> None:
        n = self.spec.network
        self._add("subnet", n.subnet_name, _cls("subnet")(
            n.subnet_name, name=n.subnet_name, network_id=self.res[("network", n.name)].id, cidr=n.cidr,
            ip_version=4, gateway_ip=n.gateway_ip, tags=self.tags, opts=self.own))

    def _declare_router(self) -> None:
        n = self.spec.network
        ext = openstack.networking.get_network_output(name=n.external_network, opts=self.admin_invoke)
        self._add("router", n.router_name, _cls("router")(
            n.router_name, name=n.router_name, external_network_id=ext.id, description=f"{MANAGED_BY}-managed",
            tags=self.tags, opts=self.own))

    def _declare_router_interface(self) -> None:
        n = self.spec.network
        name = f"{n.router_name}/{n.subnet_name}"
        self._add("router_interface", name, _cls("router_interface")(
            name, router_id=self.res[("router", n.router_name)].id, subnet_id=self.res[("subnet", n.subnet_name)].id,
            opts=self.own))

    def _declare_security_group(self) -> None:
        for g in self.spec.security_groups:
            self._add("security_group", g.name, _cls("security_group")(
                g.name, name=g.name, description=g.description, delete_default_rules=True, tags=self.tags,
                opts=self.own))

    def _declare_security_group_rule(self) -> None:
        for g in self.spec.security_groups:
            for r in g.rules:
                label = rule_label(g.name, r)
                self._add("security_group_rule", label, _cls("security_group_rule")(
                    label, security_group_id=self.res[("security_group", g.name)].id, direction=r.direction,
                    ethertype=r.ethertype, protocol=r.protocol, port_range_min=r.port_min,
                    port_range_max=r.port_max, remote_ip_prefix=r.remote_cidr, description=r.description,
                    opts=self.own))

    def _declare_server_group(self) -> None:
        for g in self.spec.server_groups:
            self._add("server_group", g.name, _cls("server_group")(g.name, name=g.name, policies=g.policy,
                                                                    opts=self.own))

    def _declare_port(self) -> None:
        n = self.spec.network
        for s in self.spec.servers:
            self._add("port", s.port_name, _cls("port")(
                s.port_name, name=s.port_name, network_id=self.res[("network", n.name)].id,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=self.res[("subnet", n.subnet_name)].id)],
                security_group_ids=[self.res[("security_group", x)].id for x in s.security_groups], tags=self.tags,
                opts=self.own))

    def _declare_server(self) -> None:
        spec = self.spec
        for s in spec.servers:
            hints = ([openstack.compute.InstanceSchedulerHintArgs(group=self.res[("server_group", s.server_group)].id)]
                     if s.server_group else None)
            self._add("server", s.name, _cls("server")(
                s.name, name=s.name, flavor_id=self.res[("flavor", s.flavor)].id, image_name=s.image,
                availability_zone=s.availability_zone,
                networks=[openstack.compute.InstanceNetworkArgs(port=self.res[("port", s.port_name)].id)],
                scheduler_hints=hints, user_data=s.user_data or None,
                metadata={"managed-by": MANAGED_BY, "department": spec.department, "request": s.request,
                          "role": s.role},
                opts=pulumi.ResourceOptions(parent=self, provider=self.project_provider, depends_on=self.flavor_access)))

    def _declare_volume(self) -> None:
        for v in self.spec.volumes:
            vol = self._add("volume", v.name, _cls("volume")(
                v.name, name=v.name, size=v.size_gb, description=f"{MANAGED_BY}-managed volume of {v.server}",
                metadata={"managed-by": MANAGED_BY}, opts=self.own))
            _cls("volume", 1)(f"{v.name}/attach", instance_id=self.res[("server", v.server)].id, volume_id=vol.id,
                              opts=self.own)

    def _declare_floating_ip(self) -> None:
        n = self.spec.network
        rif = self.res[("router_interface", f"{n.router_name}/{n.subnet_name}")]
        for f in self.spec.floating_ips:
            port = self.res[("port", f"{f.server}-port")]
            self._add("floating_ip", f.name, _cls("floating_ip")(
                f.name, pool=f.pool, description=f"{MANAGED_BY}-managed {f.name}", port_id=port.id, tags=self.tags,
                opts=pulumi.ResourceOptions(parent=self, provider=self.project_provider, depends_on=[rif])))
