"""The policy pack (stacks/policy) refuses, in `pulumi preview`, a hand-written stack that breaks
each of the center's rules, with the policy's message; the compliant one passes.

The stack is tests/stack/handwritten (a plain Pulumi Python project, run by the language host
`make pulumi` built); the policy config is the one `yunshang stack policy-config` writes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.policy.config import policy_document
from yunshang.stackpolicy import policy_config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CASES = {
    "ok": (3, None, None),
    "admin-port": (3, "no-world-admin-ports", "ingress from 0.0.0.0/0 reaches admin port(s) 22: forbidden at MLPS 3"),
    "world-ingress-mlps4": (4, "no-world-ingress-mlps4", "ingress from 0.0.0.0/0: no world-open ingress at MLPS 4"),
    "uncontracted-cloud": (3, "contracted-explicit-provider",
                           "its provider's cloud 'unicom' is not an operator ypl-hand holds a valid contract with"),
    "default-provider": (3, "contracted-explicit-provider", "bound to the default provider"),
    "missing-tags": (3, "yunshang-tags", "tags lack 'yunshang'"),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory, devcloud):
    d = tmp_path_factory.mktemp("handwritten")
    shutil.copy(Path(__file__).parent / "handwritten" / "__main__.py", d / "__main__.py")
    prov = Path(shutil.which("pulumi-resource-openstack", path=str(BIN))).resolve().parent
    lang = Path(shutil.which("pulumi-language-python", path=str(BIN))).resolve().parent
    (d / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "ypl-hand", "runtime": {"name": "python", "options": {"virtualenv": str(BIN.parent)}},
        "backend": {"url": f"file://{d / 'state'}"},
        "plugins": {"providers": [{"name": "openstack", "path": str(prov)}],
                    "languages": [{"name": "python", "path": str(lang)}]}}))
    (d / "state").mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OS_")},
           "PULUMI_HOME": str(d / "home"), "PULUMI_CONFIG_PASSPHRASE": "ypl", "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "OS_CLIENT_CONFIG_FILE": devcloud.clouds_file,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(BIN / "pulumi"), "stack", "init", "t", "--non-interactive"], cwd=d, env=env, check=True,
                   capture_output=True)
    # the default provider (case default-provider) needs a cloud to configure at all
    subprocess.run([str(BIN / "pulumi"), "config", "set", "openstack:cloud", "telecom", "--stack", "t"], cwd=d,
                   env=env, check=True, capture_output=True)
    return d, env


@pytest.mark.parametrize("case", list(CASES))
def test_policy_pack_refuses_each_broken_rule(project, case):
    d, env = project
    level, policy, message = CASES[case]
    cfg = d / f"policy-{case}.json"
    cfg.write_text(json.dumps(policy_document(policy_config("ypl-hand", level, {"telecom": ["YPLH-1"]}))))
    subprocess.run([str(BIN / "pulumi"), "config", "set", "case", case, "--stack", "t"], cwd=d, env=env,
                   check=True, capture_output=True)
    r = subprocess.run([str(BIN / "pulumi"), "preview", "--stack", "t", "--non-interactive",
                        "--policy-pack", str(ROOT / "stacks" / "policy"), "--policy-pack-config", str(cfg)],
                       cwd=d, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    if policy is None:
        assert r.returncode == 0, out
        assert "mandatory" not in out, out
    else:
        assert r.returncode != 0, out
        assert f"[mandatory]  {policy}" in out, out
        assert message in out, out
