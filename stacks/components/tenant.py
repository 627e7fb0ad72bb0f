"""DepartmentTenant: one department's tenant on one operator, built from a TenantSpec.

It decides nothing: every name, number and rule comes from ``yunshang.tenant.TenantSpec``.
Every child is ``parent=self`` and bound to an explicit ``openstack.Provider`` for the
operator's cloud (clouds.yaml entry): the ``admin`` provider (identity, quotas, flavors,
look-ups) given in the args, and a project-scoped provider the component creates once the
project exists (network, security groups, servers, volumes, floating IPs are the project's
own). Nothing falls back to OS_CLOUD or other environment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_openstack as openstack

from yunshang.tenant import MANAGED_BY, OPERATOR_ACCESS_ROLE, TenantSpec, rule_label

TYPE = "yunshang:tenant:DepartmentTenant"


@dataclass
class DepartmentTenantArgs:
    spec: TenantSpec
    admin_provider: openstack.Provider       # bound to spec.cloud, admin-scoped
    # user name -> initial password (Pulumi secret Outputs); users without one get none
    initial_passwords: Optional[Mapping[str, pulumi.Input[str]]] = None


class DepartmentTenant(pulumi.ComponentResource):
    project: openstack.identity.Project
    project_provider: openstack.Provider

    def __init__(self, name: str, args: DepartmentTenantArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        spec = args.spec
        admin = pulumi.ResourceOptions(parent=self, provider=args.admin_provider)
        admin_invoke = pulumi.InvokeOutputOptions(provider=args.admin_provider)
        tags = [MANAGED_BY]

        # ---- identity (admin scope)
        self.project = openstack.identity.Project(
            spec.project.name, name=spec.project.name, description=spec.project.description,
            tags=list(spec.project.tags), opts=admin)
        role_names = sorted({a.role for a in spec.role_assignments} | {OPERATOR_ACCESS_ROLE})
        role_id = {r: openstack.identity.get_role_output(name=r, opts=admin_invoke).id for r in role_names}
        users = {}
        passwords = args.initial_passwords or {}
        for u in spec.users:
            users[u.name] = openstack.identity.User(
                u.name, name=u.name, description=u.description, default_project_id=self.project.id,
                extra={"email": u.email} if u.email else None, password=passwords.get(u.name), opts=admin)
        for a in spec.role_assignments:
            openstack.identity.RoleAssignment(
                f"{a.user}/{a.role}", project_id=self.project.id, user_id=users[a.user].id, role_id=role_id[a.role],
                opts=admin)
        me = openstack.identity.get_auth_scope_output(name="operator", opts=admin_invoke)
        operator_access = openstack.identity.RoleAssignment(
            f"operator/{OPERATOR_ACCESS_ROLE}", project_id=self.project.id, user_id=me.user_id,
            role_id=role_id[OPERATOR_ACCESS_ROLE], opts=admin)

        # ---- quotas: only the fields the spec names (the others keep the cloud's defaults)
        q = spec.quotas.as_dict()
        openstack.compute.QuotaSetV2("compute", project_id=self.project.id, **q["compute"], opts=admin)
        openstack.networking.QuotaV2("network", project_id=self.project.id, **q["network"], opts=admin)
        openstack.blockstorage.QuoteSetV3("volume", project_id=self.project.id, **q["volume"], opts=admin)

        # ---- private flavors
        access = []
        for f in spec.flavors:
            fl = openstack.compute.Flavor(f.name, name=f.name, vcpus=f.vcpus, ram=f.ram_mb, disk=f.disk_gb,
                                          is_public=False, opts=admin)
            access.append(openstack.compute.FlavorAccess(f"{f.name}/access", flavor_id=fl.id,
                                                         tenant_id=self.project.id, opts=admin))

        # ---- the project's own scope
        self.project_provider = openstack.Provider(
            f"{spec.operator}-{spec.project.name}", cloud=spec.cloud, tenant_id=self.project.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator_access]))
        own = pulumi.ResourceOptions(parent=self, provider=self.project_provider)

        n = spec.network
        ext = openstack.networking.get_network_output(name=n.external_network, opts=admin_invoke)
        net = openstack.networking.Network(n.name, name=n.name, tags=tags, opts=own)
        subnet = openstack.networking.Subnet(n.subnet_name, name=n.subnet_name, network_id=net.id, cidr=n.cidr,
                                             ip_version=4, gateway_ip=n.gateway_ip, tags=tags, opts=own)
        router = openstack.networking.Router(n.router_name, name=n.router_name, external_network_id=ext.id,
                                             description=f"{MANAGED_BY}-managed", tags=tags, opts=own)
        rif = openstack.networking.RouterInterface(f"{n.router_name}/{n.subnet_name}", router_id=router.id,
                                                   subnet_id=subnet.id, opts=own)

        groups = {}
        for g in spec.security_groups:
            sg = openstack.networking.SecGroup(g.name, name=g.name, description=g.description,
                                               delete_default_rules=True, tags=tags, opts=own)
            groups[g.name] = sg
            for r in g.rules:
                openstack.networking.SecGroupRule(
                    rule_label(g.name, r), security_group_id=sg.id, direction=r.direction, ethertype=r.ethertype,
                    protocol=r.protocol, port_range_min=r.port_min, port_range_max=r.port_max,
                    remote_ip_prefix=r.remote_cidr, description=r.description, opts=own)

        server_groups = {g.name: openstack.compute.ServerGroup(g.name, name=g.name, policies=g.policy, opts=own)
                         for g in spec.server_groups}

        servers, ports = {}, {}
        for s in spec.servers:
            port = openstack.networking.Port(
                s.port_name, name=s.port_name, network_id=net.id,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)],
                security_group_ids=[groups[x].id for x in s.security_groups], tags=tags, opts=own)
            ports[s.name] = port
            hints = ([openstack.compute.InstanceSchedulerHintArgs(group=server_groups[s.server_group].id)]
                     if s.server_group else None)
            servers[s.name] = openstack.compute.Instance(
                s.name, name=s.name, flavor_name=s.flavor, image_name=s.image, availability_zone=s.availability_zone,
                networks=[openstack.compute.InstanceNetworkArgs(port=port.id)], scheduler_hints=hints,
                user_data=s.user_data or None,
                metadata={"managed-by": MANAGED_BY, "department": spec.department, "request": s.request,
                          "role": s.role},
                opts=pulumi.ResourceOptions(parent=self, provider=self.project_provider, depends_on=access))
        for v in spec.volumes:
            vol = openstack.blockstorage.Volume(v.name, name=v.name, size=v.size_gb,
                                                description=f"{MANAGED_BY}-managed volume of {v.server}",
                                                metadata={"managed-by": MANAGED_BY}, opts=own)
            openstack.compute.VolumeAttach(f"{v.name}/attach", instance_id=servers[v.server].id, volume_id=vol.id,
                                           opts=own)
        for f in spec.floating_ips:
            openstack.networking.FloatingIp(
                f.name, pool=f.pool, description=f"{MANAGED_BY}-managed {f.name}", port_id=ports[f.server].id,
                tags=tags, opts=pulumi.ResourceOptions(parent=self, provider=self.project_provider, depends_on=[rif]))

        self.register_outputs({"project_id": self.project.id, "network_cidr": n.cidr})
