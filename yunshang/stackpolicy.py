"""The center's rules for Pulumi stacks, as pure decisions on a resource's inputs.

The policy pack (stacks/policy) hands each resource's Pulumi type, inputs and provider inputs to
these functions; each returns the violation messages (empty: compliant). The same rules hold for
yunshang's own program and for stacks a center writes by hand.

Config (one JSON object, written by ``policy_config``):
  department    the department the stack belongs to
  mlpsLevel     its MLPS level (the highest of the department's and its requests')
  clouds        {cloud name: [contract ids]}: the clouds.yaml entries of the operators the
                department holds a valid contract with on the plan date
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from yunshang.capacity import DEPARTMENT_TAG_PREFIX, PROJECT_TAG
from yunshang.tenant import ADMIN_PORTS, KIND, MANAGED_BY, normalise_rule

# The Pulumi types come from the one model of kinds (yunshang.tenant.KINDS).
SG_RULE = KIND["security_group_rule"].pulumi_type
PROVIDER = "pulumi:providers:openstack"
# Resource types whose `tags` must carry yunshang's marker, and those whose `metadata` must.
TAGGED = frozenset(KIND[k].pulumi_type for k in ("network", "subnet", "router", "security_group", "port",
                                                  "floating_ip"))
PROJECT = KIND["project"].pulumi_type
WITH_METADATA = frozenset({KIND["server"].pulumi_type, KIND["volume"].pulumi_type})

POLICIES = {
    "no-world-admin-ports": "No security-group rule opens an admin port (22, 3389, 5900, 6443) to the "
                            "world at MLPS >= 3.",
    "no-world-ingress-mlps4": "No ingress from 0.0.0.0/0 or ::/0 at all at MLPS 4.",
    "contracted-explicit-provider": "Every OpenStack resource is on an explicit provider whose cloud is an "
                                    "operator the department holds a valid contract with.",
    "yunshang-tags": "yunshang's markers are present: project tags, network tags, server/volume metadata.",
}


def project_cloud(cloud: str, project: str) -> str:
    """The clouds.yaml entry yunshang derives to act inside ``project`` with operator ``cloud``'s
    account (the Terraform provider ignores an explicit project when a cloud is named)."""
    return f"{cloud}/{project}"


def operator_cloud(cloud: str) -> str:
    """The operator cloud an entry belongs to: ``telecom/dept-x`` -> ``telecom``."""
    return cloud.split("/", 1)[0]


def policy_config(department: str, mlps_level: int, clouds: Mapping[str, list[str]]) -> dict:
    return {"department": department, "mlpsLevel": int(mlps_level),
            "clouds": {k: sorted(v) for k, v in sorted(clouds.items())}}


def contracted_clouds(catalog, department: str, day: dt.date) -> dict[str, list[str]]:
    """{cloud: [contract ids]} of the operators ``department`` holds a valid contract with on ``day``."""
    dept = catalog.department(department)
    out: dict[str, list[str]] = {}
    for c in dept.contracts:
        if c.valid_on(day):
            out.setdefault(catalog.provider(c.provider).cloud, []).append(c.id)
    return out


def _world(rule) -> bool:
    return rule.remote_cidr in ("0.0.0.0/0", "::/0")


def _rule_of(props: Mapping[str, Any]):
    """The normal form of a SecGroupRule's inputs (None when it is not an IP-prefix rule)."""
    if props.get("remoteGroupId") and not props.get("remoteIpPrefix"):
        return None
    proto = props.get("protocol")
    return normalise_rule(props.get("direction") or "ingress", None if proto is None else str(proto),
                          props.get("portRangeMin") or None, props.get("portRangeMax") or None,
                          props.get("remoteIpPrefix"), props.get("ethertype") or "IPv4")


def world_admin_ports(type_: str, props: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    if type_ != SG_RULE or int(cfg.get("mlpsLevel", 0)) < 3:
        return []
    r = _rule_of(props)
    if r is None or r.direction != "ingress" or not _world(r):
        return []
    hit = [p for p in ADMIN_PORTS if r.covers_port(p)]
    if not hit:
        return []
    return [f"ingress from {r.remote_cidr} reaches admin port(s) {', '.join(map(str, hit))}: forbidden at "
            f"MLPS {cfg['mlpsLevel']} (open them to the management CIDR only)"]


def world_ingress(type_: str, props: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    if type_ != SG_RULE or int(cfg.get("mlpsLevel", 0)) < 4:
        return []
    r = _rule_of(props)
    if r is None or r.direction != "ingress" or not _world(r):
        return []
    return [f"ingress from {r.remote_cidr}: no world-open ingress at MLPS {cfg['mlpsLevel']}"]


def provider_violations(type_: str, urn: str, provider: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> list[str]:
    """``provider``: {"urn": ..., "props": {...}} of the resource's provider (None: not known)."""
    if not type_.startswith("openstack:"):
        return []
    clouds = cfg.get("clouds") or {}
    if provider is None or "::default_" in str(provider.get("urn", "")):
        return ["bound to the default provider (ambient OS_* / OS_CLOUD credentials): use an explicit "
                "openstack.Provider(cloud=<operator's clouds.yaml entry>)"]
    return cloud_violations(provider.get("props") or {}, clouds, cfg.get("department", "?"))


def cloud_violations(props: Mapping[str, Any], clouds: Mapping[str, Any], department: str) -> list[str]:
    cloud = props.get("cloud")
    if not cloud:
        return ["its provider names no cloud: name the operator's clouds.yaml entry (cloud=...)"]
    if operator_cloud(cloud) not in clouds:
        allowed = ", ".join(sorted(clouds)) or "none"
        return [f"its provider's cloud {cloud!r} is not an operator {department} holds a valid contract with "
                f"(allowed: {allowed})"]
    return []


def tag_violations(type_: str, props: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    if type_ == PROJECT:
        need = {PROJECT_TAG, f"{DEPARTMENT_TAG_PREFIX}{cfg.get('department', '?')}"}
        missing = sorted(need - set(props.get("tags") or ()))
        return [f"project tags lack {', '.join(missing)}"] if missing else []
    if type_ in TAGGED:
        return [] if MANAGED_BY in (props.get("tags") or ()) else [f"tags lack {MANAGED_BY!r}"]
    if type_ in WITH_METADATA:
        md = props.get("metadata") or {}
        return [] if md.get("managed-by") == MANAGED_BY else [f"metadata lacks managed-by={MANAGED_BY}"]
    return []
