"""The Pulumi program under Pulumi's official mocks (pulumi.runtime.set_mocks).

Asserts: the declared graph is exactly the spec; every resource is bound to a provider of the
department's contracted operator (from the "<provider URN>::<id>" the mocks receive); an MLPS-3
tenant has no world-open admin port; no two departments' tenants share a CIDR; quota resources
carry only the fields the spec names; stacks/__main__.py builds the same graph from stack config.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import runpy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_tenant_fixtures as fx  # noqa: E402

from stacks.graph import declare, declare_tenant, graph_inventory  # noqa: E402
from yunshang.tenant import ADMIN_PORTS, normalise_rule, spec_inventory, tenant_spec  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "prefecture"
DAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def fixture_specs():
    cat = fx.catalog()
    plan = fx.plan(cat)
    return [tenant_spec(cat, plan, d, o) for d in ("health", "tourism") for o in ("telecom", "unicom")]


@pytest.fixture(scope="module")
def sample_specs():
    """Small tenants of the bundled sample prefecture (lean: the three smallest per operator)."""
    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.tenant import tenant_specs

    cat = load_catalog(SAMPLE)
    specs = tenant_specs(cat, place(cat, DAY))
    chosen = []
    for op in sorted({s.operator for s in specs}):
        chosen += sorted((s for s in specs if s.operator == op), key=lambda s: (len(s.servers), s.department))[:3]
    return chosen


@pytest.fixture(scope="module")
def graphs(fixture_specs, sample_specs):
    return [(s, declare_tenant(s)) for s in fixture_specs + sample_specs]


def test_graph_is_exactly_the_spec(graphs):
    for spec, g in graphs:
        assert graph_inventory(g) == spec_inventory(spec), spec.stack_name


def test_component_type_and_children_parented(graphs):
    spec, g = graphs[0]
    comps = g.by_type("yunshang:tenant:DepartmentTenant")
    assert [c.name for c in comps] == [spec.stack_name]
    # children of the component carry it in their URN's type chain
    kids = [r for r in g.resources if "yunshang:tenant:DepartmentTenant$" in r.urn]
    assert len(kids) == len([r for r in g.resources if r.type.startswith("openstack:")]) + 1  # + project provider


def test_every_resource_bound_to_the_contracted_operator(graphs):
    for spec, g in graphs:
        providers = g.providers()
        assert providers, spec.stack_name
        for p in providers:
            # the operator's entry, or the entry yunshang derives from it scoped to the project
            assert p.inputs.get("cloud") in (spec.cloud, f"{spec.cloud}/{spec.project.name}"), \
                (spec.stack_name, p.name, p.inputs)
        for r in g.resources:
            if r.type.startswith("openstack:"):
                assert r.provider is not None, (spec.stack_name, r.type, r.name)
                prov_urn = r.provider.rsplit("::", 1)[0]
                assert prov_urn in {p.urn for p in providers}, (r.name, r.provider)
                assert r.operator == spec.cloud, (spec.stack_name, r.type, r.name, r.cloud)
        # lookups too
        prov_keys = {f"{p.urn}::{p.id}" for p in providers}
        assert all(provider in prov_keys for _, _, provider in g.calls), spec.stack_name


def test_contract_operator_differs_per_stack(fixture_specs):
    a = declare_tenant(fixture_specs[0])
    b = declare_tenant(fixture_specs[1])
    assert {r.operator for r in a.resources if r.operator} == {"telecom"}
    assert {r.operator for r in b.resources if r.operator} == {"unicom"}


def test_mlps3_no_world_open_admin_port(graphs):
    checked = 0
    for spec, g in graphs:
        if spec.mlps_level < 3:
            continue
        checked += 1
        for r in g.by_type("openstack:networking/secGroupRule:SecGroupRule"):
            i = r.inputs
            rule = normalise_rule(i["direction"], i.get("protocol"), _int(i.get("portRangeMin")),
                                  _int(i.get("portRangeMax")), i.get("remoteIpPrefix"), i.get("ethertype", "IPv4"))
            if rule.direction == "ingress" and rule.remote_cidr == "0.0.0.0/0":
                assert not any(rule.covers_port(p) for p in ADMIN_PORTS), (spec.stack_name, r.name)
    assert checked >= 3


def test_fixture_world_any_template_really_declared_split(graphs):
    """The test above can fail: the fixture's db template asks for 'any from 0.0.0.0/0'."""
    spec, g = graphs[0]
    names = {r.name for r in g.by_type("openstack:networking/secGroupRule:SecGroupRule")}
    assert f"{spec.project.name}-db.ingress.ipv4.tcp.23-3388.0.0.0.0_0" in names
    assert not any(n.startswith(f"{spec.project.name}-db.ingress.ipv4.any.any.0.0.0.0") for n in names)


def test_two_departments_never_share_a_cidr(graphs):
    nets = {}
    for spec, g in graphs:
        for r in g.by_type("openstack:networking/subnet:Subnet"):
            nets[(spec.stack_name, r.name)] = ipaddress.ip_network(r.inputs["cidr"])
    assert len(nets) == len(graphs)
    for (a, na), (b, nb) in itertools.combinations(nets.items(), 2):
        assert not na.overlaps(nb), (a, b)


def test_quota_resources_set_only_named_fields(graphs):
    spec, g = graphs[0]
    q = spec.quotas.as_dict()
    tokens = {"compute": "openstack:compute/quotaSetV2:QuotaSetV2", "network": "openstack:networking/quotaV2:QuotaV2",
              "volume": "openstack:blockstorage/quoteSetV3:QuoteSetV3"}
    for service, tok in tokens.items():
        (r,) = g.by_type(tok)
        fields = {k for k, v in r.inputs.items() if k != "projectId" and v is not None}
        assert {_snake(k) for k in fields} == set(q[service]), service


def test_no_secret_in_declared_inputs_without_config(graphs):
    spec, g = graphs[0]
    assert all("password" not in r.inputs for r in g.by_type("openstack:identity/user:User"))


def test_main_reads_stack_config_and_builds_same_graph(tmp_path, sample_specs, monkeypatch):
    """stacks/__main__.py reads the recorded plan the config names (never re-places)."""
    import pulumi.runtime.config as pconfig

    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.plans import record_plan
    from yunshang.store import open_store

    spec = sample_specs[0]
    db = "sqlite:///" + str(tmp_path / "plans.db")
    monkeypatch.setenv("YUNSHANG_DB", db)
    cat = load_catalog(SAMPLE)
    with open_store(db) as st:
        rec = record_plan(st, cat, place(cat, DAY), by="test", source="plan --save", departments=[spec.department])
    pconfig.set_all_config({"yunshang:catalog": str(SAMPLE), "yunshang:department": spec.department,
                            "yunshang:operator": spec.operator, "yunshang:plan": str(rec.id),
                            "yunshang:planHash": rec.content_hash})
    try:
        g = declare(lambda: runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__"),
                    stack=spec.stack_name)
    finally:
        pconfig.set_all_config({})
    assert graph_inventory(g) == spec_inventory(spec)


def _int(v):
    return None if v is None else int(v)


def _snake(k: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in k)
