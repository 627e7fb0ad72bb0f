"""One declaration per tenant resource kind (yunshang.tenant.KINDS) drives the spec inventory,
the SDK engine, the Pulumi component, the mock-graph reader and the import file. These tests
fail when a kind is declared in one place but missing from another."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_tenant_fixtures as fx  # noqa: E402

from yunshang.tenant import DESTROY_ORDER, KIND, KIND_ORDER, KINDS, PULUMI_TYPES, Item, spec_inventory, tenant_spec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def spec():
    cat = fx.catalog()
    return tenant_spec(cat, fx.plan(cat), "health", "telecom")


def test_sixteen_kinds_each_once_in_order():
    assert len(KINDS) == 16 and len(set(KIND_ORDER)) == 16
    assert DESTROY_ORDER == KIND_ORDER[::-1]
    assert set(PULUMI_TYPES) == {k.name for k in KINDS if k.importable}


def test_every_kind_has_items_in_a_full_spec_and_nothing_else(spec):
    inv = spec_inventory(spec)
    assert all(isinstance(i, Item) for i in inv)
    assert {i.kind for i in inv} == set(KIND_ORDER)
    for i in inv:
        assert list(i.key) == sorted(i.key), i          # canonical key order


def test_sdk_engine_has_every_kind_and_only_those():
    from yunshang.openstack.tenant.base import KindEngine
    from yunshang.openstack.tenant.kinds import _ALL, ENGINES

    assert tuple(e.kind for e in ENGINES) == KIND_ORDER
    assert set(_ALL) == set(KIND_ORDER)
    for e in ENGINES:
        assert e.update in ("in-place", "if-managed", "manual"), e.kind
        for verb in ("read", "apply"):                      # each verb its own, not the base's
            assert getattr(type(e), verb) is not getattr(KindEngine, verb), (e.kind, verb)
        assert e.deleter is not None or type(e).delete is not KindEngine.delete, e.kind


def test_pulumi_component_declares_every_kind_with_its_types():
    from stacks.components.tenant import DepartmentTenant, resource_class

    declared = {n[len("_declare_"):] for n, _ in inspect.getmembers(DepartmentTenant) if n.startswith("_declare_")}
    assert declared == set(KIND_ORDER)
    for k in KINDS:
        for t in k.pulumi_types:
            cls = resource_class(t)
            assert cls.__name__ == t.rsplit(":", 1)[-1], t   # the token names a real pulumi-openstack class


def test_graph_reader_for_every_kind_and_only_those():
    from stacks.graph import READERS

    assert set(READERS) == set(KIND_ORDER)


def test_graph_has_every_kind_and_each_type_is_declared(spec):
    from stacks.graph import declare_tenant, graph_inventory

    g = declare_tenant(spec)
    inv = graph_inventory(g)
    assert {i.kind for i in inv} == set(KIND_ORDER)
    known = {t for k in KINDS for t in k.pulumi_types}
    openstack_types = {r.type for r in g.resources if r.type.startswith("openstack:")}
    assert openstack_types == known, openstack_types ^ known


def test_import_file_uses_the_declared_types_and_order():
    from yunshang.openstack.tenant import Observed, import_file

    obs = Observed("p1")
    for k in reversed(KINDS):
        obs.add(Item(k.name, f"x-{k.name}"), f"id-{k.name}")
    doc = import_file(obs)
    assert [r["type"] for r in doc["resources"]] == [KIND[n].pulumi_type for n in KIND_ORDER if KIND[n].importable]
    assert all(r["id"] == "id-" + r["name"][2:] for r in doc["resources"])


def test_plan_changes_follow_the_kind_order(spec):
    from yunshang.openstack.tenant import Observed, plan_changes

    changes, _ = plan_changes(spec, Observed(None))
    ranks = [KIND_ORDER.index(c.kind) for c in changes]
    assert ranks == sorted(ranks) and {c.kind for c in changes} == set(KIND_ORDER)
