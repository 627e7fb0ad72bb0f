"""The lifecycle store: requests, placements, reservations and the append-only audit log.

SQLite by default (one file, WAL, embedded); PostgreSQL by URL
(``postgresql://...``) for a center where several engineers act at once.

``open_store(url)`` returns a :class:`Store`. Every lifecycle step is ONE
database transaction that checks the transition (``yunshang.lifecycle``),
changes the request and appends the audit entry; approval also checks
capacity inside that transaction under a write lock (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on the capacity rows), so two
engineers approving against the last capacity cannot both win.

The audit table is append-only in the database itself (triggers that raise
on UPDATE, DELETE and, on PostgreSQL, TRUNCATE), and each entry carries a
SHA-256 hash chained to the previous one, so even a tampering DBA who drops
the triggers is caught by ``verify_audit()``. No code path here issues an
UPDATE or DELETE against it (a unit test reads this source to keep it so).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from yunshang import lifecycle as lc
from yunshang.billing import HeldResource
from yunshang.errors import NotFound, YunshangError
from yunshang.plans import PlanRecord
from yunshang.redact import exception_text, redact, redact_obj, redact_url, url_secrets

Clock = Callable[[], dt.datetime]


class StoreUnavailable(YunshangError):
    """The lifecycle database could not be opened (bad URL, server down, no permission)."""

    exit_code = 4


def default_url() -> str:
    """$YUNSHANG_DB, else a SQLite file under $XDG_STATE_HOME/yunshang (~/.local/state/yunshang)."""
    env = os.environ.get("YUNSHANG_DB")
    if env:
        return env
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return "sqlite:///" + os.path.join(base, "yunshang", "lifecycle.db")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class PlacementRow:
    """One zone share of a placed request entry (what review computed, what approve reserves)."""

    request_name: str
    role: str                    # primary | standby
    provider: str
    contract: str
    zone: str
    instances: int
    vcpu: float
    ram_gb: float
    disk_gb: float
    floating_ips: float
    monthly_cost_cny: float


@dataclass(frozen=True)
class CapacityRow:
    provider: str
    zone: str
    vcpu: float
    ram_gb: float
    disk_gb: float
    source: str = "catalog"      # catalog | live


@dataclass(frozen=True)
class RequestRecord:
    id: int
    department: str
    title: str
    state: str
    document: dict
    source_file: str
    submitted_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    engine: str = ""
    configured_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    reclaimed_at: dt.datetime | None = None
    placements: tuple[PlacementRow, ...] = ()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str


def _ts(d: dt.datetime) -> str:
    if d.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return d.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _parse_ts(s: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(s) if s else None


def _parse_ts_set(s: str) -> dt.datetime:
    """A timestamp of a NOT NULL column."""
    return dt.datetime.fromisoformat(s)


def entry_hash(prev_hash: str, at: str, actor: str, action: str, subject: str,
               before_json: str, after_json: str, reason: str) -> str:
    """SHA-256 over the previous hash and this entry's fields (the audit chain)."""
    payload = json.dumps([prev_hash, at, actor, action, subject, before_json, after_json, reason],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------- schema
_TABLES = [
    """CREATE TABLE IF NOT EXISTS requests (
        id {serial},
        department TEXT NOT NULL,
        title TEXT NOT NULL,
        state TEXT NOT NULL,
        document TEXT NOT NULL,
        source_file TEXT NOT NULL,
        submitted_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        engine TEXT NOT NULL DEFAULT '',
        configured_at TEXT,
        published_at TEXT,
        reclaimed_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS placements (
        request_id BIGINT NOT NULL REFERENCES requests(id),
        request_name TEXT NOT NULL,
        role TEXT NOT NULL,
        provider TEXT NOT NULL,
        contract TEXT NOT NULL,
        zone TEXT NOT NULL,
        instances INTEGER NOT NULL,
        vcpu DOUBLE PRECISION NOT NULL,
        ram_gb DOUBLE PRECISION NOT NULL,
        disk_gb DOUBLE PRECISION NOT NULL,
        floating_ips DOUBLE PRECISION NOT NULL,
        monthly_cost_cny DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS capacity (
        provider TEXT NOT NULL,
        zone TEXT NOT NULL,
        vcpu DOUBLE PRECISION NOT NULL,
        ram_gb DOUBLE PRECISION NOT NULL,
        disk_gb DOUBLE PRECISION NOT NULL,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (provider, zone))""",
    """CREATE TABLE IF NOT EXISTS reservations (
        request_id BIGINT NOT NULL REFERENCES requests(id),
        provider TEXT NOT NULL,
        zone TEXT NOT NULL,
        vcpu DOUBLE PRECISION NOT NULL,
        ram_gb DOUBLE PRECISION NOT NULL,
        disk_gb DOUBLE PRECISION NOT NULL,
        reserved_at TEXT NOT NULL,
        released_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit (
        seq {serial},
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        before_json TEXT NOT NULL,
        after_json TEXT NOT NULL,
        reason TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS plans (
        id {serial},
        content_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        source TEXT NOT NULL,
        plan_date TEXT NOT NULL,
        catalog_digest TEXT NOT NULL,
        document TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS plan_departments (
        plan_id BIGINT NOT NULL REFERENCES plans(id),
        department TEXT NOT NULL,
        PRIMARY KEY (plan_id, department))""",
    "CREATE INDEX IF NOT EXISTS placements_request ON placements(request_id)",
    "CREATE INDEX IF NOT EXISTS plan_departments_department ON plan_departments(department, plan_id)",
    "CREATE INDEX IF NOT EXISTS reservations_zone ON reservations(provider, zone)",
]

_SQLITE_GUARDS = [
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END""",
]

_PG_GUARDS = [
    """CREATE OR REPLACE FUNCTION yunshang_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP; END $$""",
    """CREATE OR REPLACE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
       FOR EACH ROW EXECUTE FUNCTION yunshang_audit_append_only()""",
    """CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
       FOR EACH STATEMENT EXECUTE FUNCTION yunshang_audit_append_only()""",
]

_PG_SCHEMA_LOCK = 0x79756E73   # advisory lock ids ("yuns"): schema creation
_PG_AUDIT_LOCK = 0x79756E74    # audit chain appends
_PG_NAME_LOCK = 0x7975         # (class, hashtext(name)): per-department ceiling checks


# --------------------------------------------------------------------------- backends
class _Backend:
    """One database connection of the store (SQLite or PostgreSQL), with the SQL dialect's few differences."""
    placeholder = "?"
    lock_suffix = ""
    serial = ""
    kind = ""

    guards: Sequence[str] = ()
    conn: Any                                       # sqlite3.Connection | psycopg.Connection
    errors: tuple[type[Exception], ...]             # the driver's error classes

    def execute(self, q: str, params: Sequence = ()) -> list[tuple]:
        """Run ``q`` (``?`` placeholders) and return its rows (none for a statement without a result)."""
        raise NotImplementedError

    def begin_write(self) -> None:
        """Open a write transaction."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        raise NotImplementedError

    def lock_audit(self) -> None:
        """Serialise appends to the audit chain until the transaction ends."""
        raise NotImplementedError

    def lock_name(self, name: str) -> None:
        """Serialise on ``name`` (a department: its contract ceilings) until the transaction ends."""
        raise NotImplementedError

    def sql(self, q: str) -> str:
        return q if self.placeholder == "?" else q.replace("?", self.placeholder)

    def _schema_prelude(self) -> None:
        """Runs first inside the schema transaction (PostgreSQL: serialise concurrent creators)."""

    def create_schema(self) -> None:
        self.begin_write()
        try:
            self._schema_prelude()
            for t in _TABLES:
                self.conn.execute(t.format(serial=self.serial))
            for g in self.guards:
                self.conn.execute(g)
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def close(self) -> None:
        self.conn.close()


class _Sqlite(_Backend):
    kind = "sqlite"
    guards = _SQLITE_GUARDS
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str):
        import sqlite3

        self.errors = (sqlite3.Error,)
        self.path = path
        try:
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA busy_timeout=60000")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite store {path}: {exc}") from None

    def execute(self, q: str, params: Sequence = ()) -> list[tuple]:
        cur = self.conn.execute(self.sql(q), tuple(params))
        rows = cur.fetchall()
        cur.close()
        return rows

    def begin_write(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")   # takes the database write lock now, not at first write

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def lock_audit(self) -> None:
        pass                                   # BEGIN IMMEDIATE already serialises writers

    def lock_name(self, name: str) -> None:
        pass                                   # BEGIN IMMEDIATE already serialises writers



class _Postgres(_Backend):
    kind = "postgresql"
    guards = _PG_GUARDS
    placeholder = "%s"
    lock_suffix = " FOR UPDATE"
    serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str):
        import psycopg

        self.errors = (psycopg.Error,)
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            msg = exception_text(exc, known=url_secrets(url))
            raise StoreUnavailable(f"cannot connect to PostgreSQL store {redact_url(url)}: {msg}") from None

    def execute(self, q: str, params: Sequence = ()) -> list[tuple]:
        cur = self.conn.execute(self.sql(q), tuple(params))
        rows = cur.fetchall() if cur.description else []
        cur.close()
        return rows

    def begin_write(self) -> None:
        self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        import psycopg

        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.execute("ROLLBACK")

    def lock_audit(self) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_AUDIT_LOCK,))

    def _schema_prelude(self) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))

    def lock_name(self, name: str) -> None:
        """A transaction-scoped lock on a name (e.g. a department: its contract ceilings)."""
        self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_PG_NAME_LOCK, name))


# libpq's connection keywords (PostgreSQL 16), for telling ``host=db dbname=ys`` from a file name
_LIBPQ_KEYWORDS = frozenset(
    "host hostaddr port dbname user password passfile channel_binding connect_timeout client_encoding options "
    "application_name fallback_application_name keepalives keepalives_idle keepalives_interval keepalives_count "
    "tcp_user_timeout replication gssencmode sslmode requiressl sslcompression sslcert sslkey sslpassword "
    "sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer require_auth ssl_min_protocol_version "
    "ssl_max_protocol_version krbsrvname gsslib gssdelegation service target_session_attrs load_balance_hosts".split())
_KEYWORD_DSN = re.compile(r"\s*([A-Za-z_]+)\s*=")


def _keyword_dsn(url: str) -> bool:
    """Whether ``url`` is a libpq keyword DSN (``host=db dbname=ys``); a ``word=...`` that is no libpq
    keyword is refused rather than taken for a SQLite file name (which would hold a password)."""
    m = _KEYWORD_DSN.match(url)
    if m is None:
        return False
    if m.group(1).lower() not in _LIBPQ_KEYWORDS:
        raise StoreUnavailable(f"store {redact_url(url)!r}: {m.group(1)!r} is not a PostgreSQL connection keyword "
                               "(host, port, dbname, user, ...); a SQLite file is given as sqlite:///PATH")
    return True


def open_store(url: str | None = None, clock: Clock = utc_now) -> "Store":
    """Open (and create if needed) the store at ``url``: ``sqlite:///PATH``, a plain path, ``postgresql://...``,
    or libpq's keyword form (``host=... dbname=... user=...``)."""
    url = url or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        backend: _Backend = _Postgres(url)
    elif url.startswith("sqlite:///"):
        backend = _Sqlite(url[len("sqlite:///"):])     # sqlite:///rel/path or sqlite:////abs/path
    elif url.startswith("sqlite://"):
        raise StoreUnavailable(f"store URL {redact_url(url)!r}: expected sqlite:///PATH (three slashes)")
    elif "://" in url:
        raise StoreUnavailable(f"store URL {redact_url(url)!r}: expected sqlite:///PATH or postgresql://...")
    elif _keyword_dsn(url):
        backend = _Postgres(url)                       # libpq's keyword form: host=... dbname=... user=...
    else:
        backend = _Sqlite(url)
    try:
        backend.create_schema()
    except backend.errors as exc:
        raise StoreUnavailable(f"cannot create the schema in {redact_url(url)}: "
                               f"{exception_text(exc, known=url_secrets(url))}") from None
    return Store(backend, url, clock)


# --------------------------------------------------------------------------- the store
_REQ_COLS = ("id, department, title, state, document, source_file, submitted_by, created_at, updated_at, "
             "engine, configured_at, published_at, reclaimed_at")
_PLAN_COLS = "id, content_hash, created_at, created_by, source, plan_date, catalog_digest, document"
_PL_COLS = ("request_name, role, provider, contract, zone, instances, vcpu, ram_gb, disk_gb, floating_ips, "
            "monthly_cost_cny")


class Store:
    def __init__(self, backend: _Backend, url: str, clock: Clock = utc_now):
        self._db = backend
        self.url = url
        self.kind = backend.kind
        self._clock = clock

    # ---- plumbing
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _now(self) -> dt.datetime:
        return self._clock()

    def _write(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` inside one write transaction; roll back on any error."""
        self._db.begin_write()
        try:
            out = fn()
            self._db.commit()
            return out
        except BaseException:
            self._db.rollback()
            raise

    def _append_audit(self, actor: str, action: str, subject: str, before: Any, after: Any, reason: str,
                      at: dt.datetime) -> AuditEntry:
        """INSERT one audit entry, chained to the last one. The only statement that writes the audit table."""
        self._db.lock_audit()
        last = self._db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
        prev = last[0][0] if last else ""
        at_s = _ts(at)
        before, after, reason = redact_obj(before), redact_obj(after), redact(reason)   # the log is forever
        bj = json.dumps(before, ensure_ascii=False, sort_keys=True, default=str)
        aj = json.dumps(after, ensure_ascii=False, sort_keys=True, default=str)
        h = entry_hash(prev, at_s, actor, action, subject, bj, aj, reason)
        rows = self._db.execute(
            "INSERT INTO audit (at, actor, action, subject, before_json, after_json, reason, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (at_s, actor, action, subject, bj, aj, reason, prev, h))
        return AuditEntry(rows[0][0], at, actor, action, subject, before, after, reason, prev, h)

    def _load(self, request_id: int, lock: bool = False) -> RequestRecord:
        rows = self._db.execute(f"SELECT {_REQ_COLS} FROM requests WHERE id = ?"
                                + (self._db.lock_suffix if lock else ""), (int(request_id),))
        if not rows:
            raise NotFound(f"no request with id {request_id} in {redact_url(self.url)}")
        return self._record(rows[0])

    def _record(self, r: tuple, pls: list | None = None) -> RequestRecord:
        if pls is None:
            pls = self._db.execute(f"SELECT {_PL_COLS} FROM placements WHERE request_id = ? "
                                   "ORDER BY role, provider, zone, request_name", (r[0],))
        return RequestRecord(
            id=int(r[0]), department=r[1], title=r[2], state=r[3], document=json.loads(r[4]),
            source_file=r[5], submitted_by=r[6], created_at=_parse_ts_set(r[7]), updated_at=_parse_ts_set(r[8]),
            engine=r[9], configured_at=_parse_ts(r[10]), published_at=_parse_ts(r[11]),
            reclaimed_at=_parse_ts(r[12]), placements=tuple(PlacementRow(*p) for p in pls))

    @staticmethod
    def _summary(rec: RequestRecord) -> dict:
        return {"state": rec.state, "engine": rec.engine}

    def _step(self, request_id: int, action: str, actor: str, reason: str,
              extra: Callable[[RequestRecord, dt.datetime], dict] | None = None,
              columns: Callable[[dt.datetime], dict] | None = None) -> RequestRecord:
        """One lifecycle step: lock the request, check the transition, run ``extra``, update, audit."""
        def tx() -> RequestRecord:
            rec = self._load(request_id, lock=True)
            new_state = lc.transition(rec.state, action, actor, reason)
            now = self._now()
            details = extra(rec, now) if extra else {}
            cols = {"state": new_state, "updated_at": _ts(now)}
            cols.update(columns(now) if columns else {})
            sets = ", ".join(f"{k} = ?" for k in cols)
            self._db.execute(f"UPDATE requests SET {sets} WHERE id = ?", (*cols.values(), rec.id))
            after = {"state": new_state, **{k: v for k, v in cols.items() if k not in ("state", "updated_at")},
                     **details}
            self._append_audit(actor, action, f"request:{rec.id}", self._summary(rec), after, reason, now)
            return self._load(rec.id)
        return self._write(tx)

    # ---- lifecycle
    def submit(self, doc: lc.RequestDocument, by: str, source_file: str = "") -> RequestRecord:
        lc.transition("", "submit", by)
        def tx() -> RequestRecord:
            now = self._now()
            body = redact_obj(lc.document_to_dict(doc))    # a probe target's password is not kept
            rows = self._db.execute(
                "INSERT INTO requests (department, title, state, document, source_file, submitted_by, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (doc.department, doc.title, lc.SUBMITTED, json.dumps(body, ensure_ascii=False), source_file,
                 by, _ts(now), _ts(now)))
            rid = int(rows[0][0])
            self._append_audit(by, "submit", f"request:{rid}", None,
                               {"state": lc.SUBMITTED, "document": body, "source_file": source_file}, "", now)
            return self._load(rid)
        return self._write(tx)

    def review(self, request_id: int, by: str, placements: Iterable[PlacementRow],
               capacities: Iterable[CapacityRow] = (), notes: Sequence[str] = ()) -> RequestRecord:
        """Record the reviewed placement (replacing an earlier review's) and the zones' capacity."""
        placements, capacities = tuple(placements), tuple(capacities)

        def extra(rec: RequestRecord, now: dt.datetime) -> dict:
            self._db.execute("DELETE FROM placements WHERE request_id = ?", (rec.id,))
            for p in placements:
                self._db.execute(f"INSERT INTO placements (request_id, {_PL_COLS}) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (rec.id, *_pl_values(p)))
            for c in capacities:
                self._upsert_capacity(c, now)
            return {"placements": [p.__dict__ for p in placements],
                    "monthly_cost_cny": round(sum(p.monthly_cost_cny for p in placements), 2),
                    "notes": list(notes)}
        return self._step(request_id, "review", by, "", extra)

    def _upsert_capacity(self, c: CapacityRow, now: dt.datetime) -> None:
        self._db.execute(
            "INSERT INTO capacity (provider, zone, vcpu, ram_gb, disk_gb, source, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, zone) DO UPDATE SET "
            "vcpu = excluded.vcpu, ram_gb = excluded.ram_gb, disk_gb = excluded.disk_gb, "
            "source = excluded.source, updated_at = excluded.updated_at",
            (c.provider, c.zone, c.vcpu, c.ram_gb, c.disk_gb, c.source, _ts(now)))

    def set_capacity(self, capacities: Iterable[CapacityRow], by: str, reason: str = "") -> None:
        """Record zones' schedulable capacity (audited: it decides what approvals may reserve)."""
        capacities = tuple(capacities)
        def tx() -> None:
            now = self._now()
            for c in capacities:
                self._upsert_capacity(c, now)
            self._append_audit(by, "set-capacity", "capacity", None, [c.__dict__ for c in capacities], reason, now)
        self._write(tx)

    def capacity(self) -> list[dict]:
        """Per zone: recorded capacity, what is reserved by holding requests, and what is free."""
        caps = self._db.execute("SELECT provider, zone, vcpu, ram_gb, disk_gb, source FROM capacity "
                                "ORDER BY provider, zone")
        out = []
        for prov, zone, v, r, d, src in caps:
            rv, rr, rd = self._reserved(prov, zone)
            out.append({"provider": prov, "zone": zone, "source": src,
                        "vcpu": v, "ram_gb": r, "disk_gb": d,
                        "reserved_vcpu": rv, "reserved_ram_gb": rr, "reserved_disk_gb": rd,
                        "free_vcpu": v - rv, "free_ram_gb": r - rr, "free_disk_gb": d - rd})
        return out

    def _reserved(self, provider: str, zone: str) -> tuple[float, float, float]:
        row = self._db.execute(
            "SELECT COALESCE(SUM(vcpu), 0), COALESCE(SUM(ram_gb), 0), COALESCE(SUM(disk_gb), 0) "
            "FROM reservations WHERE provider = ? AND zone = ? AND released_at IS NULL", (provider, zone))[0]
        return float(row[0]), float(row[1]), float(row[2])

    def endorse(self, request_id: int, by: str) -> RequestRecord:
        """The department head endorses the request (the first step of the approval chain)."""
        return self._step(request_id, "endorse", by, "")

    def approve_first(self, request_id: int, by: str, reason: str) -> RequestRecord:
        """The first of two approvals (above the catalog's cost threshold); reserves nothing yet."""
        return self._step(request_id, "approve-first", by, reason)

    def _committed_by_contract(self, department: str, exclude_id: int) -> dict[str, float]:
        holding = tuple(sorted(lc.HOLDING_STATES))
        marks = ", ".join("?" for _ in holding)
        rows = self._db.execute(
            "SELECT p.contract, COALESCE(SUM(p.monthly_cost_cny), 0) FROM placements p JOIN requests r "
            f"ON r.id = p.request_id WHERE r.department = ? AND r.id <> ? AND r.state IN ({marks}) "
            "GROUP BY p.contract", (department, exclude_id, *holding))
        return {c: float(v) for c, v in rows}

    def approve(self, request_id: int, by: str, reason: str,
                on_locked: Callable[[], None] | None = None,
                ceilings_cny: dict[str, float] | None = None) -> RequestRecord:
        """Approve and reserve the reviewed placement, with the capacity check inside the transaction.

        The capacity rows of every zone involved are locked (in a fixed order) before the
        reserved sums are read, so concurrent approvals serialise and the loser sees the
        winner's reservations. ``on_locked`` (tests) runs while the locks are held.
        A refused approval is itself recorded in the audit log.
        """
        def extra(rec: RequestRecord, now: dt.datetime) -> dict:
            if not rec.placements:
                raise lc.TransitionRefused(f"request {rec.id} has no reviewed placement; run review first")
            shortfalls = []
            if ceilings_cny is not None:
                # the department's contract ceilings: its other holding requests + this one, under one lock
                self._db.lock_name("ceiling:" + rec.department)
                held = self._committed_by_contract(rec.department, rec.id)
                mine: dict[str, float] = {}
                for p in rec.placements:
                    mine[p.contract] = mine.get(p.contract, 0.0) + p.monthly_cost_cny
                for cid, cost in sorted(mine.items()):
                    ceiling = ceilings_cny.get(cid)
                    if ceiling is None:
                        shortfalls.append(f"contract {cid}: not a contract of {rec.department} (any more)")
                    elif held.get(cid, 0.0) + cost > ceiling + 1e-6:
                        shortfalls.append(f"contract {cid} ceiling: needs {cost:,.2f} CNY/month, "
                                          f"{max(0.0, ceiling - held.get(cid, 0.0)):,.2f} left of {ceiling:,.2f}")
            need: dict[tuple[str, str], list[float]] = {}
            for p in rec.placements:
                n = need.setdefault((p.provider, p.zone), [0.0, 0.0, 0.0])
                n[0] += p.vcpu
                n[1] += p.ram_gb
                n[2] += p.disk_gb
            for prov, zone in sorted(need):
                cap = self._db.execute("SELECT vcpu, ram_gb, disk_gb FROM capacity WHERE provider = ? AND zone = ?"
                                       + self._db.lock_suffix, (prov, zone))
                if not cap:
                    shortfalls.append(f"{prov}/{zone}: no recorded capacity (review the request again)")
                    continue
                reserved = self._reserved(prov, zone)
                for res, c, r, wanted in zip(("vcpu", "ram_gb", "disk_gb"), cap[0], reserved, need[(prov, zone)],
                                           strict=True):
                    if r + wanted > c + 1e-9:
                        shortfalls.append(f"{prov}/{zone} {res}: needs {wanted:g}, free {c - r:g} of {c:g} "
                                          f"(short by {r + wanted - c:g})")
            if on_locked:
                on_locked()
            if shortfalls:
                raise CapacityRefused(rec.id, shortfalls)
            for (prov, zone), (v, r, d) in sorted(need.items()):
                self._db.execute("INSERT INTO reservations (request_id, provider, zone, vcpu, ram_gb, disk_gb, "
                                 "reserved_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (rec.id, prov, zone, v, r, d, _ts(now)))
            return {"reserved": [{"provider": p, "zone": z, "vcpu": v, "ram_gb": r, "disk_gb": d}
                                 for (p, z), (v, r, d) in sorted(need.items())]}
        try:
            return self._step(request_id, "approve", by, reason, extra)
        except CapacityRefused as exc:
            # Recorded in its own transaction: the refusal is part of the trail.
            shortfalls = exc.shortfalls
            self._write(lambda: self._append_audit(by, "approve-refused", f"request:{request_id}", None,
                                                   {"shortfalls": shortfalls}, reason, self._now()))
            raise

    def reject(self, request_id: int, by: str, reason: str) -> RequestRecord:
        return self._step(request_id, "reject", by, reason)

    def configure(self, request_id: int, by: str, engine: str, details: dict | None = None,
                  plan: dict | None = None) -> RequestRecord:
        """Record that the tenant(s) were applied (from recorded ``plan``: id and content hash); the
        billing clock of its placements starts here."""
        return self._step(request_id, "configure", by, "",
                          extra=lambda rec, now: {"details": details or {}, **({"plan": plan} if plan else {})},
                          columns=lambda now: {"engine": engine, "configured_at": _ts(now)})

    def publish(self, request_id: int, by: str, probes: Sequence[dict] = ()) -> RequestRecord:
        return self._step(request_id, "publish", by, "", extra=lambda rec, now: {"probes": list(probes)},
                          columns=lambda now: {"published_at": _ts(now)})

    def monitor(self, request_id: int, by: str) -> RequestRecord:
        return self._step(request_id, "monitor", by, "")

    def plan_reclaim(self, request_id: int, by: str, reason: str, evidence: dict | None = None) -> RequestRecord:
        return self._step(request_id, "plan-reclaim", by, reason, extra=lambda rec, now: {"evidence": evidence or {}})

    def keep(self, request_id: int, by: str, reason: str) -> RequestRecord:
        return self._step(request_id, "keep", by, reason)

    def reclaim(self, request_id: int, by: str, reason: str, details: dict | None = None) -> RequestRecord:
        """Confirm a planned reclaim: reservations released, the billing clock stops."""
        def extra(rec: RequestRecord, now: dt.datetime) -> dict:
            self._db.execute("UPDATE reservations SET released_at = ? WHERE request_id = ? AND released_at IS NULL",
                             (_ts(now), rec.id))
            return {"details": details or {}}
        return self._step(request_id, "reclaim", by, reason, extra=extra,
                          columns=lambda now: {"reclaimed_at": _ts(now)})

    def record_event(self, actor: str, action: str, subject: str, after: Any, reason: str = "") -> AuditEntry:
        """Append a non-request event (e.g. a takeover drill's evidence) to the audit log."""
        if not actor or not actor.strip():
            raise lc.TransitionRefused(f"{action}: who acts must be named (--by NAME)")
        return self._write(lambda: self._append_audit(actor, action, subject, None, after, reason, self._now()))

    # ---- recorded plans (yunshang.plans makes and checks them; the store only keeps them)
    def save_plan(self, document: dict, content_hash: str, catalog_digest: str, by: str, source: str,
                  departments: Sequence[str]) -> PlanRecord:
        """Record a plan (and its departments) with an audit entry; returns it with its new id."""
        if not by or not by.strip():
            raise lc.TransitionRefused("saving a plan: who acts must be named (--by NAME)")

        def tx() -> int:
            now = self._now()
            rows = self._db.execute(
                "INSERT INTO plans (content_hash, created_at, created_by, source, plan_date, catalog_digest, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (content_hash, _ts(now), by, source, document["date"], catalog_digest,
                 json.dumps(document, ensure_ascii=False, sort_keys=True)))
            pid = int(rows[0][0])
            for d in sorted(set(departments)):
                self._db.execute("INSERT INTO plan_departments (plan_id, department) VALUES (?, ?)", (pid, d))
            self._append_audit(by, "save-plan", f"plan:{pid}", None,
                               {"content_hash": content_hash, "catalog_digest": catalog_digest, "source": source,
                                "date": document["date"], "departments": sorted(set(departments))}, "", now)
            return pid
        return self.get_plan(self._write(tx))

    def get_plan(self, plan_id: int) -> PlanRecord:
        rows = self._db.execute(f"SELECT {_PLAN_COLS} FROM plans WHERE id = ?", (int(plan_id),))
        if not rows:
            raise NotFound(f"no recorded plan with id {plan_id} in {redact_url(self.url)} "
                           "(yunshang plan --save records one)")
        return self._plan(rows[0])

    def latest_plan(self, department: str) -> PlanRecord | None:
        """The most recently recorded plan that places something of ``department``."""
        rows = self._db.execute(f"SELECT {', '.join('p.' + c.strip() for c in _PLAN_COLS.split(','))} FROM plans p "
                                "JOIN plan_departments d ON d.plan_id = p.id WHERE d.department = ? "
                                "ORDER BY p.id DESC LIMIT 1", (department,))
        return self._plan(rows[0]) if rows else None

    def list_plans(self, department: str | None = None) -> list[PlanRecord]:
        if department is None:
            rows = self._db.execute(f"SELECT {_PLAN_COLS} FROM plans ORDER BY id")
        else:
            rows = self._db.execute(f"SELECT {', '.join('p.' + c.strip() for c in _PLAN_COLS.split(','))} "
                                    "FROM plans p JOIN plan_departments d ON d.plan_id = p.id "
                                    "WHERE d.department = ? ORDER BY p.id", (department,))
        return [self._plan(r) for r in rows]

    def _plan(self, r: tuple) -> PlanRecord:
        depts = self._db.execute("SELECT department FROM plan_departments WHERE plan_id = ? ORDER BY department",
                                 (r[0],))
        return PlanRecord(id=int(r[0]), content_hash=r[1], created_at=_parse_ts_set(r[2]), created_by=r[3], source=r[4],
                          plan_date=dt.date.fromisoformat(r[5]), catalog_digest=r[6], document=json.loads(r[7]),
                          departments=tuple(d[0] for d in depts))

    # ---- reads
    def get(self, request_id: int) -> RequestRecord:
        return self._load(request_id)

    def list_requests(self, state: str | None = None, department: str | None = None,
                      limit: int | None = None, before_id: int | None = None) -> list[RequestRecord]:
        """Requests in id order; with ``limit``: the newest ``limit`` (below ``before_id``), still in id order.
        Placements come in one query for the whole page (not one per request)."""
        q = f"SELECT {_REQ_COLS} FROM requests WHERE 1 = 1"
        params: list[Any] = []
        if state:
            q += " AND state = ?"
            params.append(state)
        if department:
            q += " AND department = ?"
            params.append(department)
        if before_id is not None:
            q += " AND id < ?"
            params.append(int(before_id))
        if limit is not None:
            rows = list(reversed(self._db.execute(q + " ORDER BY id DESC LIMIT ?", (*params, int(limit)))))
        else:
            rows = self._db.execute(q + " ORDER BY id", params)
        if not rows:
            return []
        by_id: dict[int, list] = {int(r[0]): [] for r in rows}
        pq = (f"SELECT request_id, {_PL_COLS} FROM placements WHERE request_id IN "
              f"(SELECT id FROM ({q}) AS page) ORDER BY request_id, role, provider, zone, request_name")
        for p in self._db.execute(pq, params):
            if int(p[0]) in by_id:
                by_id[int(p[0])].append(p[1:])
        return [self._record(r, by_id[int(r[0])]) for r in rows]

    def audit_log(self, subject: str | None = None, since_seq: int = 0) -> list[AuditEntry]:
        q = ("SELECT seq, at, actor, action, subject, before_json, after_json, reason, prev_hash, hash "
             "FROM audit WHERE seq > ?")
        params: list[Any] = [since_seq]
        if subject:
            q += " AND subject = ?"
            params.append(subject)
        return [AuditEntry(int(r[0]), _parse_ts_set(r[1]), r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]),
                           r[7], r[8], r[9]) for r in self._db.execute(q + " ORDER BY seq", params)]

    def verify_audit(self) -> tuple[bool, int | None, int]:
        """Recompute the hash chain: (intact, first bad seq or None, entries checked)."""
        prev = ""
        n = 0
        for r in self._db.execute("SELECT seq, at, actor, action, subject, before_json, after_json, reason, "
                                  "prev_hash, hash FROM audit ORDER BY seq"):
            n += 1
            if r[8] != prev or entry_hash(prev, r[1], r[2], r[3], r[4], r[5], r[6], r[7]) != r[9]:
                return False, int(r[0]), n
            prev = r[9]
        return True, None, n

    def holdings(self) -> list[HeldResource]:
        """Per placement row of every request that was configured: what it held and when."""
        rows = self._db.execute(
            "SELECT r.id, r.department, r.configured_at, r.reclaimed_at, "
            f"{', '.join('p.' + c.strip() for c in _PL_COLS.split(','))} "
            "FROM requests r JOIN placements p ON p.request_id = r.id "
            "WHERE r.configured_at IS NOT NULL ORDER BY r.id, p.role, p.provider, p.zone")
        out = []
        for rid, dept, conf, recl, *p in rows:
            pr = PlacementRow(*p)
            out.append(HeldResource(dept, pr.provider, pr.contract, pr.request_name, pr.role, pr.zone, pr.vcpu,
                                    pr.ram_gb, pr.disk_gb, pr.floating_ips, _parse_ts_set(conf), _parse_ts(recl), int(rid)))
        return out

    def raw_connection(self):
        """The DB-API connection (for tests and `psql`-like inspection); the tool itself never needs it."""
        return self._db.conn


class CapacityRefused(lc.CapacityExhausted):
    def __init__(self, request_id: int, shortfalls: list[str]):
        self.request_id = request_id
        self.shortfalls = tuple(shortfalls)
        super().__init__(f"approve request {request_id} refused: not enough capacity: " + "; ".join(shortfalls))


def _pl_values(p: PlacementRow) -> tuple:
    return (p.request_name, p.role, p.provider, p.contract, p.zone, p.instances, p.vcpu, p.ram_gb, p.disk_gb,
            p.floating_ips, p.monthly_cost_cny)
