"""The policy pack's config file for one stack (what `--policy-pack-config` reads)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from yunshang import stackpolicy as sp


def policy_document(cfg: dict) -> dict:
    """Pulumi's policy-config format: one entry per policy, each with the same settings."""
    return {name: {"enforcementLevel": "mandatory", **cfg} for name in sp.POLICIES}


def write_policy_config(spec, path: Path, catalog=None) -> Path:
    """Write ``path`` for ``spec``'s stack: its department, MLPS level and contracted clouds (from
    the catalog when given, else the spec's own operator and contracts)."""
    clouds = (sp.contracted_clouds(catalog, spec.department, spec.date) if catalog is not None
              else {spec.cloud: list(spec.contracts)})
    doc = policy_document(sp.policy_config(spec.department, spec.mlps_level, clouds))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
