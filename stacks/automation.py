"""The Pulumi Automation API front: preview/up/destroy one department tenant stack.

One isolated workspace per stack (`<department>.<operator>`): its own work dir, PULUMI_HOME and
file backend under ``<state>/pulumi/<stack>/``, and the program runs inline with the TenantSpec
the core derived (so what runs is exactly what `stack graph` showed under mocks). The operator's
OpenStack credentials come only from its named clouds.yaml entry: OS_* variables other than
OS_CLIENT_CONFIG_FILE are removed from the engine's environment.

Where the `pulumi` binary is absent every entry point raises ``ToolMissing`` at once.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from yunshang.admission import state_dir
from yunshang.errors import ToolMissing, YunshangError
from yunshang.tenant import TenantSpec

PULUMI_MISSING = ("the pulumi CLI is not installed: install the Pulumi CLI (v3, `pulumi` on PATH) and its "
                  "openstack resource plugin (pulumi plugin install resource openstack v5.5.3), or use the "
                  "openstacksdk engine: yunshang tenant apply DEPT --operator OP")


def require_pulumi() -> str:
    path = shutil.which("pulumi")
    if path is None:
        raise ToolMissing(PULUMI_MISSING)
    return path


def workspace_dir(spec: TenantSpec) -> Path:
    return state_dir() / "pulumi" / spec.stack_name


def _engine_env(ws: Path, clouds_file: str | None) -> dict[str, str]:
    env = {"PULUMI_HOME": str(ws / "home"), "PULUMI_BACKEND_URL": f"file://{ws / 'backend'}",
           "PULUMI_SKIP_UPDATE_CHECK": "true"}
    if clouds_file:
        env["OS_CLIENT_CONFIG_FILE"] = str(Path(clouds_file).resolve())
    if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        raise YunshangError("set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): the file backend "
                            "encrypts stack secrets with it")
    return env


def _stack(spec: TenantSpec, clouds_file: str | None):
    require_pulumi()
    from pulumi import automation as auto

    from stacks.program import build_tenant

    ws = workspace_dir(spec)
    for sub in ("home", "backend", "work"):
        (ws / sub).mkdir(parents=True, exist_ok=True)
    env = _engine_env(ws, clouds_file)
    for k in [k for k in os.environ if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
        os.environ.pop(k)  # the engine inherits our environment: no credentials but the named cloud's
    opts = auto.LocalWorkspaceOptions(work_dir=str(ws / "work"), pulumi_home=str(ws / "home"), env_vars=env)
    try:
        return auto.create_or_select_stack(stack_name=spec.stack_name, project_name="yunshang",
                                           program=lambda: build_tenant(spec), opts=opts)
    except FileNotFoundError as exc:  # the binary vanished between which() and now
        raise ToolMissing(PULUMI_MISSING) from exc


def _run(spec: TenantSpec, clouds_file: str | None, verb: str, on_output: Callable[[str], None] | None) -> dict:
    stack = _stack(spec, clouds_file)
    try:
        if verb == "preview":
            r = stack.preview(on_output=on_output)
            return {"stack": spec.stack_name, "verb": verb, "changes": dict(r.change_summary)}
        if verb == "up":
            r = stack.up(on_output=on_output)
            return {"stack": spec.stack_name, "verb": verb, "result": r.summary.result,
                    "changes": dict(r.summary.resource_changes or {}),
                    "outputs": {k: v.value for k, v in r.outputs.items() if not v.secret}}
        r = stack.destroy(on_output=on_output)
        return {"stack": spec.stack_name, "verb": verb, "result": r.summary.result,
                "changes": dict(r.summary.resource_changes or {})}
    except FileNotFoundError as exc:
        raise ToolMissing(PULUMI_MISSING) from exc


def preview_stack(spec: TenantSpec, clouds_file: str | None = None, on_output=None) -> dict:
    return _run(spec, clouds_file, "preview", on_output)


def up_stack(catalog, plan, spec: TenantSpec, clouds_file: str | None = None, on_output=None) -> dict:
    """Admit, then `pulumi up` ``spec``'s stack (catalog and plan are the ones ``spec`` came from).

    Admission (live Placement capacity + the department's quota usage, under the operator's
    ledger lock) runs before the engine; its reservation is released when the update ends."""
    require_pulumi()
    from yunshang.openstack.tenant import admit_live

    handle = admit_live(spec, clouds_file)
    try:
        return _run(spec, clouds_file, "up", on_output)
    finally:
        handle.release()


def destroy_stack(spec: TenantSpec, clouds_file: str | None = None, on_output=None) -> dict:
    return _run(spec, clouds_file, "destroy", on_output)
