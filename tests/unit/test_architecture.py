"""The architecture's rules, checked on the source: the core imports no adapter library,
and the CLI's top-level help does not import heavy libraries."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADAPTER_LIBS = {"pulumi", "pulumi_openstack", "ansible_runner", "ansible", "prometheus_client", "click", "openstack",
                "fastapi", "starlette", "uvicorn", "pydantic", "keystoneauth1"}
# The only core subpackages allowed to touch I/O libraries (ARCHITECTURE.md rule 1).
ALLOWED = {"openstack", "devcloud"}


def _imported_roots(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_adapter_library():
    offenders = []
    core = ROOT / "yunshang"
    files = [p for p in core.rglob("*.py") if p.relative_to(core).parts[0] not in ALLOWED]
    assert files, "the core package has no modules?"
    for path in files:
        bad = _imported_roots(path) & ADAPTER_LIBS
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_detector_catches_a_violation(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text("import os\nfrom prometheus_client import Gauge\nimport openstack.connection\n")
    assert _imported_roots(p) & ADAPTER_LIBS == {"prometheus_client", "openstack"}


def test_top_level_help_is_light():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = sorted(m for m in ('openstack', 'pulumi', 'ansible_runner', 'prometheus_client', 'jinja2', 'yaml')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
        "print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    heavy, _, help_text = out.partition("\n")
    assert heavy == "", f"`yunshang --help` imported {heavy}"
    assert "catalog" in help_text and "plan" in help_text
