"""Test-owned departments for the tests that build tenants on the shared devcloud.

The rule (README, issue 16): tests create their own departments and projects under a prefix no
sample (nor ``make demo``) uses, and never reuse, change or delete what they did not create. A test
that needs "a department like health" gets a copy of the sample catalog with ``<prefix>health``
added: the same contracts, requests, probes and policy, its name and contract ids prefixed, so its
Keystone project is ``dept-<prefix>health`` and its metrics carry its own labels. The sample's own
departments stay in the copy untouched (a project of theirs on the devcloud, e.g. the demo's, is
simply someone else's).
"""
from __future__ import annotations

import pathlib
import shutil

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "prefecture"


def own_catalog(dest: pathlib.Path, prefix: str, departments: tuple[str, ...]) -> pathlib.Path:
    """The sample catalog copied to ``dest`` plus ``prefix`` copies of ``departments`` (names and contract ids)."""
    assert prefix.endswith("-") and prefix[:-1].isalnum() and prefix.islower(), prefix
    shutil.copytree(SAMPLE, dest)
    for name in departments:
        text = (dest / "departments" / f"{name}.yaml").read_text(encoding="utf-8")
        contracts = [c["id"] for c in yaml.safe_load(text)["contracts"]]
        assert f"name: {name}\n" in text
        text = text.replace(f"name: {name}\n", f"name: {prefix}{name}\n", 1)
        for cid in sorted(contracts, key=len, reverse=True):
            text = text.replace(cid, own_contract(prefix, cid))
        (dest / "departments" / f"{prefix}{name}.yaml").write_text(text, encoding="utf-8")
    return dest


def own_contract(prefix: str, contract_id: str) -> str:
    """The test copy's id of a sample contract."""
    return prefix.upper() + contract_id
