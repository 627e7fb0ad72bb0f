"""stacks/pending.py and the stack lock's pure parts: every resource kind the Pulumi program
creates can be resolved after a killed `up` (looked up in the cloud, or idempotent), and the
postgres backend URL is split for libpq without losing Pulumi's table or leaking the password."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks.automation import _redact, lock_path, pg_dsn
from stacks.pending import IDEMPOTENT, OPERATOR_SCOPED, PROJECT_SCOPED, RESOLVABLE, _lookups, pending_creates
from yunshang.errors import YunshangError
from yunshang.tenant import KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_of_the_program_is_resolvable():
    tokens = {t for k in KINDS for t in k.pulumi_types}
    assert tokens <= RESOLVABLE, sorted(tokens - RESOLVABLE)
    assert not (IDEMPOTENT & (OPERATOR_SCOPED | PROJECT_SCOPED))


def test_every_resource_the_provider_serves_is_known_or_refused():
    """The provider's token table (tools/pulumi/provider/main.go): what is not resolvable is a kind
    the program never creates (a pending create of it is refused, not silently cleared)."""
    served = {"openstack:" + m for m in re.findall(r'"openstack_\w+":\s+"([\w/]+:\w+)"',
                                                   (ROOT / "tools/pulumi/provider/main.go").read_text())
              if not m.split(":")[0].split("/")[1].startswith("get")}
    program = {t for k in KINDS for t in k.pulumi_types}
    assert program <= served
    assert served - RESOLVABLE == {"openstack:identity/role:Role", "openstack:compute/keypair:Keypair"}


class _Nothing:
    """A cloud with nothing in it: every list is empty."""

    def __getattr__(self, name):
        return lambda *a, **kw: []


class _Conn:
    network = identity = compute = block_storage = _Nothing()


def test_lookups_without_project_only_reach_operator_kinds():
    assert set(_lookups(_Conn(), None)) == OPERATOR_SCOPED
    found = _lookups(_Conn(), "p1")
    assert set(found) == OPERATOR_SCOPED | PROJECT_SCOPED
    for kind, fn in found.items():  # an empty cloud: nothing found, nothing raised
        assert fn({"name": "x", "routerId": "r", "subnetId": "s", "instanceId": "i", "volumeId": "v",
                   "portId": "p", "securityGroupId": "g", "direction": "ingress"}) is None, kind


def test_pending_creates_are_the_creating_ops_only():
    d = {"pending_operations": [{"type": "creating", "resource": {"urn": "a"}},
                                {"type": "updating", "resource": {"urn": "b"}}]}
    assert pending_creates(d) == [{"urn": "a"}]
    assert pending_creates({}) == []


def test_pg_dsn_keeps_the_table_apart_and_redacts():
    dsn, table = pg_dsn("postgres://u:s3cret@db:5432/st?table=team_state&sslmode=disable")
    assert table == "team_state" and dsn == "postgresql://u:s3cret@db:5432/st?sslmode=disable"
    assert pg_dsn("postgres://u@db/st") == ("postgresql://u@db/st", "pulumi_state")
    with pytest.raises(YunshangError) as e:
        pg_dsn("postgres://u:s3cret@db/st?table=x;drop")
    assert "s3cret" not in str(e.value)
    assert _redact("postgres://u:s3cret@db/st") == "postgres://u@db/st"


def test_file_lock_lives_in_the_backend(tmp_path):
    p = lock_path(f"file://{tmp_path}/backend", "ypk-x.telecom", tmp_path / "ws")
    assert p == tmp_path / "backend" / ".yunshang" / "locks" / "ypk-x.telecom.lock"


def test_untracked_objects_are_the_named_ones_in_the_cloud_not_in_the_state():
    from stacks.pending import untracked

    inst, port = "openstack:compute/instance:Instance", "openstack:networking/port:Port"
    wanted = {inst: {"w-01", "w-02"}, port: {"w-01-port", "w-02-port"}}
    assert untracked(wanted, {inst: {"w-01", "w-02"}, port: {"w-01-port", "w-02-port"}},
                     {inst: {"w-01", "w-02", "other"}, port: {"w-01-port"}}) == []
    assert untracked(wanted, {inst: {"w-01"}, port: {"w-01-port"}},
                     {inst: {"w-01", "w-02"}, port: {"w-01-port", "w-02-port"}}) == ["Instance w-02", "Port w-02-port"]
    assert untracked(wanted, {}, {}) == []  # the first up: nothing anywhere


def test_named_objects_cover_the_duplicable_kinds():
    from stacks.pending import named_objects

    kinds = set(named_objects(_spec()))
    assert kinds <= PROJECT_SCOPED and "openstack:compute/instance:Instance" in kinds


def _spec():
    import datetime as dt

    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.tenant import tenant_spec

    cat = load_catalog(ROOT / "tests" / "stack" / "catalog")
    placed = place(cat, dt.date(2026, 12, 1))
    return tenant_spec(cat, placed, "ypl-web", "telecom")


def test_the_engine_gets_the_backend_password_apart():
    from stacks.automation import engine_backend, project_settings

    url, env = engine_backend("postgres://ys:p%40ss@db:5432/st?sslmode=disable")
    assert url == "postgres://ys@db:5432/st?sslmode=disable" and env == {"PGPASSWORD": "p@ss"}
    assert engine_backend("file:///var/state") == ("file:///var/state", {})
    assert engine_backend("postgres://ys@db/st") == ("postgres://ys@db/st", {})
    from yunshang.errors import ToolMissing

    try:
        settings = project_settings("postgres://ys:p%40ss@db/st")
    except ToolMissing:  # the engine is not linked in this venv: the URL part is checked above
        return
    assert settings["backend"]["url"] == "postgres://ys@db/st"
