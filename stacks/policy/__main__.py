"""yunshang's policy pack: the center's rules (yunshang/stackpolicy.py) enforced by the Pulumi engine.

Every policy is mandatory and reads the same config (department, mlpsLevel, clouds); a stack
without a policy config is checked at MLPS 4 with no contracted cloud, so it is refused rather
than waved through.
"""
from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # run by the language host with this directory as the program
    sys.path.insert(0, _ROOT)

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from yunshang import stackpolicy as sp  # noqa: E402

SCHEMA = PolicyConfigSchema(properties={
    "department": {"type": "string"},
    "mlpsLevel": {"type": "integer", "minimum": 1, "maximum": 5},
    "clouds": {"type": "object"},
})
STRICT = {"department": "?", "mlpsLevel": 4, "clouds": {}}


def _cfg(args: ResourceValidationArgs) -> dict:
    cfg = dict(args.get_config() or {})
    return {k: cfg.get(k, v) for k, v in STRICT.items()}


def _provider(args: ResourceValidationArgs):
    p = args.provider
    # Only `cloud` is read: other provider inputs (tenantId) may be unknown during preview.
    return None if p is None else {"urn": p.urn, "props": {"cloud": (p.props or {}).get("cloud")}}


def _check(fn):
    def validate(args: ResourceValidationArgs, report_violation):
        for msg in fn(args, _cfg(args)):
            report_violation(msg)
    return validate


def _providers(args, cfg):
    if args.resource_type == sp.PROVIDER:  # the provider resources themselves
        return sp.cloud_violations({"cloud": (args.props or {}).get("cloud")}, cfg["clouds"], cfg["department"])
    return sp.provider_violations(args.resource_type, args.urn, _provider(args), cfg)


CHECKS = {
    "no-world-admin-ports": lambda a, c: sp.world_admin_ports(a.resource_type, a.props, c),
    "no-world-ingress-mlps4": lambda a, c: sp.world_ingress(a.resource_type, a.props, c),
    "contracted-explicit-provider": _providers,
    "yunshang-tags": lambda a, c: sp.tag_violations(a.resource_type, a.props, c),
}

PolicyPack(
    name="yunshang-center",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name=name, description=sp.POLICIES[name], validate=_check(fn),
                                       config_schema=SCHEMA)
              for name, fn in CHECKS.items()],
)
