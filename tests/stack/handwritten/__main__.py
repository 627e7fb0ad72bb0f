"""A hand-written stack (not yunshang's program) for the policy-pack tests.

Config `case` picks what it declares: `ok` is compliant; every other case breaks one rule.
"""
import pulumi
import pulumi_openstack as openstack

case = pulumi.Config().require("case")
cloud = "unicom" if case == "uncontracted-cloud" else "telecom"
opts = None if case == "default-provider" else pulumi.ResourceOptions(
    provider=openstack.Provider("center", cloud=cloud))
tags = [] if case == "missing-tags" else ["yunshang"]
sg = openstack.networking.SecGroup("web", name="ypl-hand-web", description="hand-written", tags=tags, opts=opts)
port = 22 if case == "admin-port" else 443
openstack.networking.SecGroupRule("in", security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                  protocol="tcp", port_range_min=port, port_range_max=port,
                                  remote_ip_prefix="0.0.0.0/0", opts=opts)
