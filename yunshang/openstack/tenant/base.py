"""The shared base of the SDK engine's kind modules: markers, journal, the observed tenant, and
the contexts each kind's read / apply / delete step works in."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import openstack.exceptions

from yunshang.admission import state_dir
from yunshang.errors import CloudUnavailable, YunshangError
from yunshang.redact import redact_url
from yunshang.tenant import MANAGED_BY, Item, TenantSpec

MARK = f"{MANAGED_BY}-managed"
NEUTRON_TAG = MANAGED_BY
WAIT_SECONDS = 300
# Changing calls (router gateways, floating IPs, volume attachments) can take long on a loaded
# cloud; a timeout mid-create would leave an object the journal does not know (markers still do).
CHANGE_TIMEOUT_SECONDS = 120


class ApplyFailed(YunshangError):
    """An apply stopped part-way; the journal names what it created."""

    exit_code = 5


# --------------------------------------------------------------------------- journal
class Journal:
    """Append-only record of what an apply created (kind, name, id), fsync'd per entry."""

    def __init__(self, operator: str, department: str, directory: Path | None = None):
        self.path = (Path(directory) if directory else state_dir() / "journal") / operator / f"{department}.json"

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"status": "none", "created": []}

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def start(self) -> None:
        data = self.read()
        data["status"] = "running"
        data["started_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self._write(data)

    def created(self, kind: str, name: str, ident: str) -> None:
        data = self.read()
        data.setdefault("created", []).append({"kind": kind, "name": name, "id": ident})
        self._write(data)

    def finish(self, status: str, error: str = "") -> None:
        data = self.read()
        data["status"] = status
        data["error"] = error
        data["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self._write(data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the observed tenant
@dataclass
class Observed:
    """A tenant as read back: canonical items plus the ids and markers behind them."""

    project_id: str | None
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    managed: set[tuple[str, str]] = field(default_factory=set)
    raw: dict[str, object] = field(default_factory=dict)

    def add(self, item: Item | tuple, ident: str, managed: bool = False) -> None:
        it = Item(*item)
        self.items[it.ref] = it
        self.ids[it.ref] = ident
        if managed:
            self.managed.add(it.ref)

    def inventory(self) -> frozenset[Item]:
        return frozenset(self.items.values())


def desc_managed(obj) -> bool:
    return (getattr(obj, "description", None) or "").startswith(MARK)


def neutron_managed(obj) -> bool:
    return NEUTRON_TAG in (getattr(obj, "tags", None) or []) or desc_managed(obj)


def project_connection(conn, project_id: str, name: str | None = None, domain_id: str = "default"):
    """A connection with the same credentials scoped to the project (the account needs a role there)."""
    return conn.connect_as_project({"id": project_id, "name": name, "domain_id": domain_id})


def find_project(conn, name: str):
    for p in conn.identity.projects(name=name):
        return p
    return None


def rest_json(resp) -> dict:
    if resp.status_code >= 400:
        raise CloudUnavailable(f"{resp.request.method} {redact_url(resp.url)}: HTTP {resp.status_code}")
    return resp.json()


def quota_fields(spec: TenantSpec) -> dict[str, list[str]]:
    return {k: list(v) for k, v in spec.quotas.as_dict().items()}


# --------------------------------------------------------------------------- contexts
@dataclass
class ReadContext:
    """One read of a tenant: kinds read in create order, sharing what earlier kinds found."""

    conn: object
    project: object
    project_name: str
    department: str | None
    quota_fields: dict | None
    obs: Observed
    names: dict[str, str] = field(default_factory=dict)           # OpenStack id -> name
    cache: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> str:
        return self.project.id  # type: ignore[attr-defined]

    def once(self, key: str, load: Callable[[], object]):
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]

    def ports(self) -> list:
        return self.once("ports", lambda: list(self.conn.network.ports(project_id=self.pid)))  # type: ignore

    def ext_name(self, net_id: str | None) -> str:
        if not net_id:
            return ""
        ext: dict = self.once("ext", dict)  # type: ignore[assignment]
        if net_id not in ext:
            ext[net_id] = self.conn.network.get_network(net_id).name  # type: ignore[attr-defined]
        return ext[net_id]


@dataclass
class ApplyContext:
    """One apply: the ids known so far (read back, then created), preflight facts, the journal."""

    conn: object
    spec: TenantSpec
    obs: Observed
    pre: dict
    journal: Journal
    say: Callable[[str], None]
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _pconn: object = None

    def made(self, kind: str, name: str, ident: str) -> None:
        self.ids[(kind, name)] = ident
        self.journal.created(kind, name, ident)
        self.say(f"  created {kind} {name}")

    def made_neutron(self, kind: str, name: str, obj) -> None:
        """A Neutron object just created: tag it ``yunshang``, then record it."""
        self.conn.network.set_tags(obj, [NEUTRON_TAG])  # type: ignore[attr-defined]
        self.made(kind, name, obj.id)

    @property
    def pid(self) -> str:
        return self.ids[("project", self.spec.project.name)]

    def project_conn(self):
        if self._pconn is None:
            self._pconn = project_connection(self.conn, self.pid, self.spec.project.name, self.spec.project.domain)
        return self._pconn


@dataclass
class DestroyContext:
    conn: object
    obs: Observed
    waits: list = field(default_factory=list)          # (kind, id) deleted, to wait for

    def wait_gone(self, kind: str) -> None:
        conn = self.conn
        for k, ident in [w for w in self.waits if w[0] == kind]:
            getter = conn.compute.get_server if kind == "server" else conn.block_storage.get_volume  # type: ignore
            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline:
                try:
                    getter(ident)
                except openstack.exceptions.NotFoundException:
                    break
                time.sleep(0.5)
            self.waits.remove((k, ident))


class KindEngine:
    """How the SDK engine reads, converges (creates/updates) and deletes one kind.

    ``update``: what a difference means — "in-place" (updated), "if-managed" (updated when
    yunshang made it, e.g. a flavor is replaced, a volume resized/attached), "manual" (reported)."""

    kind: ClassVar[str]
    update: ClassVar[str] = "manual"
    deleter: ClassVar[tuple[str, str] | None] = None     # (proxy, method) deleting one by id, e.g. ("network", "delete_network")

    def read(self, rc: ReadContext) -> None:
        raise NotImplementedError

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        raise NotImplementedError

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        """Delete one object; False when it goes with another (nothing to say)."""
        if self.deleter is None:
            raise NotImplementedError(self.kind)
        proxy, method = self.deleter
        getattr(getattr(dc.conn, proxy), method)(ident)
        return True
