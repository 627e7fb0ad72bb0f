"""Fixtures for the stack tests: `yunshang stack ...` run for real (the Pulumi engine `make pulumi`
built, the OpenStack provider, the policy pack) against the devcloud.

The catalog (tests/stack/catalog) has two departments no other test uses, on the two operators:
`ypl-web` on telecom (MLPS 3, 2 web servers with a floating IP and a volume each) and `ypl-data`
on unicom (MLPS 2, one database server). Every CLI call is a real process (so it can be killed).
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CATALOG = Path(__file__).parent / "catalog"
DAY = dt.date(2026, 12, 1)
YUNSHANG = str(Path(sys.executable).parent / "yunshang")
PASSPHRASE = "ypl-test-passphrase"


def run_cli(state: Path, *args: str, env: dict | None = None, timeout: float = 900,
            check: bool = True) -> subprocess.CompletedProcess:
    e = {**os.environ, "YUNSHANG_STATE_DIR": str(state), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
         "YUNSHANG_DB": store_url(state), **(env or {})}
    e.pop("OS_CLOUD", None)
    r = subprocess.run([YUNSHANG, *args], env=e, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"yunshang {' '.join(args)} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def store_url(state: Path) -> str:
    """The test's own lifecycle store (the recorded plans the stack commands build)."""
    return "sqlite:///" + str(state / "lifecycle.db")


def save_plan(state: Path, catalog: Path, clouds: str) -> None:
    """Record the catalog's plan for DAY (`plan --save`, as the center's engineer in its Keystone):
    what `stack up` builds from then on."""
    run_cli(state, "plan", "--catalog", str(catalog), "--date", DAY.isoformat(), "--save", "--clouds", clouds,
            "--os-cloud", "person-center-engineer")


@pytest.fixture(scope="session")
def clouds(devcloud) -> str:
    return devcloud.clouds_file


@pytest.fixture
def catalog_copy(tmp_path) -> Path:
    """A private copy of the test catalog (a test may edit it)."""
    dst = tmp_path / "catalog"
    shutil.copytree(CATALOG, dst)
    return dst


def conn(cloud: str, clouds_file: str):
    from yunshang.openstack import connect

    return connect(cloud, clouds_file)


def leftovers(cloud: str, clouds_file: str, department: str) -> list[str]:
    """Everything of ``department`` still on ``cloud`` (project, users, flavors and any named
    resource in any project): openstacksdk, admin scope."""
    c = conn(cloud, clouds_file)
    pname = f"dept-{department}"
    out = [f"project {p.name}" for p in c.identity.projects() if p.name == pname]
    out += [f"user {u.name}" for u in c.identity.users() if u.name.startswith(f"{department}.")]
    out += [f"flavor {f.name}" for f in c.compute.flavors(is_public=None) if f.name.startswith(pname)]
    out += [f"server {s.name}" for s in c.compute.servers(all_projects=True) if s.name.startswith(department)]
    out += [f"volume {v.name}" for v in c.block_storage.volumes(all_projects=True)
            if (v.name or "").startswith(department)]
    for kind, items in (("network", c.network.networks()), ("router", c.network.routers()),
                        ("port", c.network.ports()), ("security_group", c.network.security_groups())):
        out += [f"{kind} {x.name}" for x in items if (x.name or "").startswith((pname, department))]
    out += [f"floating_ip {f.floating_ip_address}" for f in c.network.ips()
            if (f.description or "").startswith(f"yunshang-managed {department}")]
    return out
