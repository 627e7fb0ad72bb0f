"""Pure drift and change planning over canonical inventories (no cloud)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import test_tenant_fixtures as fx  # noqa: E402

from yunshang.openstack.tenant import Observed, plan_changes  # noqa: E402
from yunshang.tenant import diff_inventories, normalise_rule, rule_label, spec_inventory, tenant_spec  # noqa: E402


def spec():
    cat = fx.catalog()
    return tenant_spec(cat, fx.plan(cat), "health", "telecom")


def observed_from(items, managed=True):
    obs = Observed(project_id="p1")
    for i, item in enumerate(sorted(items)):
        obs.add(item, f"id{i}", managed)
    return obs


def test_identical_is_clean_and_plans_nothing():
    s = spec()
    inv = spec_inventory(s)
    assert diff_inventories(inv, inv).clean
    changes, drift = plan_changes(s, observed_from(inv))
    assert drift.clean and changes == []


def test_empty_cloud_plans_creating_everything_in_dependency_order():
    s = spec()
    changes, drift = plan_changes(s, Observed(project_id=None))
    assert {c.action for c in changes} == {"create"}
    assert len(changes) == len(spec_inventory(s))
    kinds = [c.kind for c in changes]
    assert kinds.index("project") < kinds.index("network") < kinds.index("port") < kinds.index("server") \
        < kinds.index("floating_ip")


def test_hand_changed_rule_is_one_missing_one_extra_and_repair_deletes_only_in_managed_group():
    s = spec()
    inv = set(spec_inventory(s))
    g = s.security_groups[-1]
    wanted = rule_label(g.name, g.rules[0])
    inv.discard(("security_group_rule", wanted, ()))
    hand = rule_label(g.name, normalise_rule("ingress", "tcp", 1, 65535, "0.0.0.0/0"))
    inv.add(("security_group_rule", hand, ()))
    drift = diff_inventories(spec_inventory(s), inv)
    assert [i[1] for i in drift.missing] == [wanted]
    assert [i[1] for i in drift.extra] == [hand] and "tcp.any.0.0.0.0_0" in hand   # 1-65535 read back as any
    changes, _ = plan_changes(s, observed_from(inv, managed=True))
    assert [(c.action, c.name) for c in changes] == [("delete", hand), ("create", wanted)]


def test_foreign_extras_are_kept_not_deleted():
    s = spec()
    inv = set(spec_inventory(s)) | {("server", "hand-made-vm", (("availability_zone", "az1"),))}
    obs = observed_from(spec_inventory(s))
    obs.add(("server", "hand-made-vm", (("availability_zone", "az1"),)), "x", managed=False)
    changes, drift = plan_changes(s, obs)
    assert [(c.action, c.kind, c.name) for c in changes] == [("keep-extra", "server", "hand-made-vm")]
    assert not drift.clean and inv  # reported as drift


def test_quota_difference_is_an_update_server_difference_is_manual():
    s = spec()
    inv = set(spec_inventory(s))
    q = next(i for i in inv if i[0] == "quota" and i[1] == "compute")
    inv.discard(q)
    inv.add(("quota", "compute", tuple((k, 1) for k, _ in q[2])))
    srv = next(i for i in inv if i[0] == "server")
    inv.discard(srv)
    inv.add((srv[0], srv[1], tuple((k, "az9") if k == "availability_zone" else (k, v) for k, v in srv[2])))
    changes, _ = plan_changes(s, observed_from(inv))
    assert {(c.action, c.kind) for c in changes} == {("update", "quota"), ("manual", "server")}
