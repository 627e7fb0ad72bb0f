"""Fixtures for the tenant tests against the devcloud (real Keystone/Nova/Neutron/Cinder/Placement).

The test catalog (tests/tenant/catalog) is tiny: department `ytest` gets 3 one-vCPU servers on
`telecom` (2 in a soft-anti-affinity group over az1/az2, with a floating IP and a 1 GB volume each).
Operators are separate control planes per cloud (see docs/devcloud.md): `telecom`, `unicom`.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

CATALOG = Path(__file__).parent / "catalog"
DAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="session")
def tenant_catalog():
    from yunshang.catalog import load_catalog

    return load_catalog(CATALOG)


@pytest.fixture(scope="session")
def tenant_plan(tenant_catalog):
    from yunshang.placement import place

    return place(tenant_catalog, DAY)


@pytest.fixture(scope="session")
def ytest_spec(tenant_catalog, tenant_plan):
    from yunshang.tenant import tenant_spec

    return tenant_spec(tenant_catalog, tenant_plan, "ytest", "telecom")


@pytest.fixture(scope="session")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("yunshang-state")


@pytest.fixture(scope="session")
def admin(devcloud):
    from yunshang.openstack import connect

    return connect("telecom", devcloud.clouds_file)


@pytest.fixture(scope="session")
def plan_db(tmp_path_factory, tenant_catalog, tenant_plan):
    """A lifecycle store of the tests' own holding the recorded plan the CLI applies (`--db`)."""
    from yunshang.plans import record_plan
    from yunshang.store import open_store

    db = "sqlite:///" + str(tmp_path_factory.mktemp("plans") / "lifecycle.db")
    with open_store(db) as st:
        record_plan(st, tenant_catalog, tenant_plan, by="tenant-tests", source="plan --save")
    return db
