"""The lifecycle store against real databases: SQLite (file, WAL) and a real PostgreSQL server."""
from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest

from yunshang import lifecycle as lc
from yunshang.store import CapacityRow, PlacementRow, open_store


def _doc(dept="health", name="his"):
    return lc.parse_request_document(
        {"department": dept, "title": "hospital info system",
         "requests": [{"name": name, "template": "web-standard", "size": "medium", "count": 2}]}, "req.yaml", default_mlps=3)


def _rows(name="his", vcpu=8, provider="telecom", zone="az1"):
    return [PlacementRow(name, "primary", provider, "WJ-2026-01", zone, 2, vcpu, vcpu * 2, 100, 1, 500.0)]


class Clock:
    def __init__(self):
        self.t = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

    def __call__(self):
        self.t += dt.timedelta(minutes=7)
        return self.t


def test_full_lifecycle_is_recorded_step_by_step(store_url):
    with open_store(store_url, clock=Clock()) as s:
        r = s.submit(_doc(), by="dept-health", source_file="req.yaml")
        assert r.state == lc.SUBMITTED
        s.set_capacity([CapacityRow("telecom", "az1", 100, 400, 10000)], by="ops")
        s.review(r.id, "li", _rows())
        s.approve(r.id, "wang", "fits the contract ceiling")
        s.configure(r.id, "li", engine="sdk", details={"telecom": "dept-health"})
        s.publish(r.id, "li", probes=[{"name": "portal", "kind": "http", "target": "http://127.0.0.1:1/"}])
        s.plan_reclaim(r.id, "li", "contract ended")
        s.keep(r.id, "wang", "contract was renewed")
        s.plan_reclaim(r.id, "li", "idle 30 days")
        final = s.reclaim(r.id, "wang", "confirmed with the department")
        assert final.state == lc.RECLAIMED and final.reclaimed_at > final.configured_at
        log = s.audit_log(subject=f"request:{r.id}")
        assert [e.action for e in log] == ["submit", "review", "approve", "configure", "publish",
                                          "plan-reclaim", "keep", "plan-reclaim", "reclaim"]
        assert [(e.before or {}).get("state") for e in log][1:3] == ["submitted", "reviewed"]
        assert log[2].actor == "wang" and log[2].reason == "fits the contract ceiling"
        assert all(e.at.tzinfo is not None for e in log)
        assert s.verify_audit() == (True, None, len(s.audit_log()))
        assert s.capacity()[0]["reserved_vcpu"] == 0          # released on reclaim
        h = s.holdings()
        assert len(h) == 1 and h[0].end == final.reclaimed_at


def test_refused_transitions_change_nothing(store_url):
    with open_store(store_url) as s:
        r = s.submit(_doc(), by="dept-health")
        with pytest.raises(lc.TransitionRefused, match="cannot approve a request that is submitted"):
            s.approve(r.id, "wang", "ok")
        s.review(r.id, "li", _rows())
        with pytest.raises(lc.TransitionRefused, match="reason is required"):
            s.approve(r.id, "wang", "  ")
        with pytest.raises(lc.TransitionRefused, match="must be named"):
            s.reject(r.id, "", "no")
        assert s.get(r.id).state == lc.REVIEWED
        assert [e.action for e in s.audit_log()] == ["submit", "review"]


def test_audit_log_cannot_be_rewritten(store_url):
    with open_store(store_url) as s:
        r = s.submit(_doc(), by="dept-health")
        s.reject(r.id, "wang", "no contract with that operator")
        before = [(e.seq, e.actor, e.reason, e.hash) for e in s.audit_log()]
        conn = s.raw_connection()
        for stmt in ("UPDATE audit SET actor = 'nobody'", "DELETE FROM audit",
                     "UPDATE audit SET reason = 'approved after all' WHERE action = 'reject'"):
            with pytest.raises(Exception, match="append-only"):
                conn.execute(stmt)
            if s.kind == "postgresql":
                pass  # autocommit: the failed statement rolled back on its own
        if s.kind == "postgresql":
            with pytest.raises(Exception, match="append-only"):
                conn.execute("TRUNCATE audit")
        assert [(e.seq, e.actor, e.reason, e.hash) for e in s.audit_log()] == before
        assert s.verify_audit()[0]


def test_tampering_around_the_guards_is_detected_by_the_hash_chain(tmp_path):
    with open_store(str(tmp_path / "x.db")) as s:
        r = s.submit(_doc(), by="dept-health")
        s.reject(r.id, "wang", "no")
        s.submit(_doc(name="his2"), by="dept-health")
        conn = s.raw_connection()
        conn.execute("DROP TRIGGER audit_no_update")      # a DBA going around the tool
        conn.execute("UPDATE audit SET reason = 'yes' WHERE action = 'reject'")
        ok, bad_seq, _ = s.verify_audit()
        assert not ok and bad_seq == 2


def _reviewed(s, name, vcpu):
    r = s.submit(_doc(name=name), by="dept-health")
    s.review(r.id, "li", _rows(name, vcpu=vcpu))
    return r.id


@pytest.mark.parametrize("rounds", [3])
def test_two_engineers_approving_the_last_capacity_exactly_one_wins(store_url, rounds):
    for i in range(rounds):
        zone = f"az{i}"
        with open_store(store_url) as s:
            s.set_capacity([CapacityRow("telecom", zone, 10, 1000, 100000)], by="ops")
            a = s.submit(_doc(name=f"a{i}"), by="dept-health").id
            b = s.submit(_doc(name=f"b{i}"), by="dept-health").id
            s.review(a, "li", _rows(f"a{i}", vcpu=8, zone=zone))
            s.review(b, "li", _rows(f"b{i}", vcpu=8, zone=zone))
        barrier = threading.Barrier(2)
        results: dict[str, object] = {}

        def engineer(who, rid, barrier=barrier, results=results):
            st = open_store(store_url)
            try:
                barrier.wait()
                # hold the lock a while: without it both would read "8 of 10 free" and both win
                st.approve(rid, who, "approve at once", on_locked=lambda: time.sleep(0.3))
                results[who] = "approved"
            except lc.CapacityExhausted as exc:
                results[who] = exc
            finally:
                st.close()

        ts = [threading.Thread(target=engineer, args=("wang", a)), threading.Thread(target=engineer, args=("zhao", b))]
        [t.start() for t in ts]
        [t.join(60) for t in ts]
        assert sorted(str(type(v).__name__) if v != "approved" else v for v in results.values()) == \
            ["CapacityRefused", "approved"], results
        loser = next(v for v in results.values() if v != "approved")
        assert "short by 6" in str(loser) and f"telecom/{zone} vcpu" in str(loser)
        with open_store(store_url) as s:
            cap = next(c for c in s.capacity() if c["zone"] == zone)
            assert cap["reserved_vcpu"] == 8 and cap["free_vcpu"] == 2
            states = sorted(s.get(x).state for x in (a, b))
            assert states == ["approved", "reviewed"]
            actions = [e.action for e in s.audit_log() if e.subject in (f"request:{a}", f"request:{b}")]
            assert actions.count("approve") == 1 and actions.count("approve-refused") == 1
            assert s.verify_audit()[0]


def test_two_engineers_approving_the_same_request_exactly_one_wins(store_url):
    with open_store(store_url) as s:
        s.set_capacity([CapacityRow("telecom", "az1", 100, 1000, 100000)], by="ops")
        rid = _reviewed(s, "his", 8)
    barrier = threading.Barrier(2)
    out = []

    def engineer(who):
        st = open_store(store_url)
        try:
            barrier.wait()
            st.approve(rid, who, "mine", on_locked=lambda: time.sleep(0.2))
            out.append("ok")
        except lc.TransitionRefused as exc:
            out.append(str(exc))
        finally:
            st.close()

    ts = [threading.Thread(target=engineer, args=(w,)) for w in ("wang", "zhao")]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    assert sorted(out)[1] == "ok" and "cannot approve a request that is approved" in sorted(out)[0]
    with open_store(store_url) as s:
        assert s.capacity()[0]["reserved_vcpu"] == 8


def test_bad_store_urls_fail_with_one_clear_line(tmp_path):
    from yunshang.store import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=r"postgresql://u:\*\*\*@127.0.0.1:1/x"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")
    with pytest.raises(StoreUnavailable, match="three slashes"):
        open_store("sqlite://x.db")
    with pytest.raises(StoreUnavailable, match="expected sqlite"):
        open_store("mysql://h/x")


def test_a_keyword_dsn_is_postgresql_not_a_sqlite_file_name(tmp_path, monkeypatch, postgres_url):
    """`--db "host=... dbname=..."` (libpq's keyword form) is PostgreSQL; a `word=...` that is no libpq
    keyword is refused; neither leaves a file named after the DSN (and its password)."""
    import psycopg
    import psycopg.conninfo

    from yunshang.store import StoreUnavailable

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreUnavailable, match=r"cannot connect to PostgreSQL store host=127.0.0.1 port=1 .*password=\*\*\*"):
        open_store("host=127.0.0.1 port=1 dbname=x user=u password=CANARYPW connect_timeout=3")
    with pytest.raises(StoreUnavailable, match="'hots' is not a PostgreSQL connection keyword") as ei:
        open_store("hots=db password=CANARYPW")
    assert "CANARYPW" not in str(ei.value)
    assert list(tmp_path.iterdir()) == []
    name = f"kwdsn_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo("", **psycopg.conninfo.conninfo_to_dict(postgres_url.rsplit("/", 1)[0] + "/" + name))
    assert "://" not in dsn and "dbname=" in dsn
    with open_store(dsn) as s:
        assert s.kind == "postgresql"
        s.record_event("test", "keyword-dsn", "store:test", {"ok": True})
        assert s.audit_log(subject="store:test")[-1].action == "keyword-dsn"


def test_list_pages_newest_first_cut_with_placements_in_one_query(store_url):
    with open_store(store_url) as s:
        s.set_capacity([CapacityRow("telecom", "az1", 1000, 1000, 100000)], "ops")
        ids = [s.submit(_doc("health" if i % 3 else "finance", f"r{i}"), "dept").id for i in range(7)]
        s.review(ids[5], "li", _rows("r5"))                 # health's newest (i % 3 != 0: health)
        assert [r.id for r in s.list_requests()] == ids
        page = s.list_requests(department="health", limit=2)
        health = [i for k, i in enumerate(ids) if k % 3]
        assert [r.id for r in page] == health[-2:] and page[-1].placements == s.get(ids[5]).placements
        assert page[-1].placements and not page[0].placements
        assert [r.id for r in s.list_requests(department="health", limit=2, before_id=page[0].id)] == health[-4:-2]
        assert s.list_requests(department="health", limit=5, before_id=health[0]) == []
