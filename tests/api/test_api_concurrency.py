"""20 departments submitting and 2 approvers approving at once, through two API processes on one
PostgreSQL database: nothing is lost, no zone and no contract ceiling is over-committed, and every
refusal was justified (no under-approval either)."""
from __future__ import annotations

import concurrent.futures as cf
import secrets
import shutil
import threading

import pytest
import yaml

from tests.api.conftest import SAMPLE, new_db, start_server, stop_server

pytestmark = pytest.mark.cloud

N = 20
ZONE_VCPU = 64            # telecom's two zones, overcommit 1: 8 requests of 8 vCPU per zone
CEILING = 1000.0          # one request (600 CNY/month) per department fits, two do not
ENTRY = {"name": "web", "template": "web-standard", "size": "small", "count": 4}     # 8 vCPU, 600 CNY/month


def _catalog(tmp):
    root = tmp / "catalog"
    shutil.copytree(SAMPLE, root)
    prov = yaml.safe_load((root / "providers.yaml").read_text())
    for z in prov["providers"][0]["zones"]:
        z.update(vcpu=ZONE_VCPU, overcommit={"vcpu": 1.0, "ram_gb": 1.0, "disk_gb": 1.0})
    (root / "providers.yaml").write_text(yaml.safe_dump(prov, allow_unicode=True))
    for i in range(1, N + 1):
        d = f"apit-{i:02d}"
        (root / "departments" / f"{d}.yaml").write_text(yaml.safe_dump({
            "name": d, "mlps_level": 2, "contracts": [
                {"id": f"APIT-{i:02d}", "provider": "telecom", "role": "primary", "start": "2025-01-01",
                 "end": "2028-12-31", "ceiling_cny_per_month": CEILING}]}))
    # departments without a head in this test: the reviewer takes them straight away
    people = yaml.safe_load((root / "people.yaml").read_text())
    people["approval"]["department_head_endorses"] = False
    (root / "people.yaml").write_text(yaml.safe_dump(people, allow_unicode=True))
    return root


@pytest.fixture(scope="module")
def setup(clouds, pg_base, tmp_path_factory, tokens):
    from yunshang.openstack.identity import ensure_person, token_of_cloud

    tmp = tmp_path_factory.mktemp("conc")
    cat = _catalog(tmp)
    data = yaml.safe_load(open(clouds, encoding="utf-8"))
    center = data["clouds"]["center"]
    for i in range(1, N + 1):
        name, pw = f"apit-{i:02d}-it", secrets.token_urlsafe(16)
        ensure_person(clouds, "center", name, f"dept-apit-{i:02d}", ["requester"], pw)
        data["clouds"][f"person-{name}"] = {**center, "auth": {**center["auth"], "username": name, "password": pw,
                                                               "project_name": f"dept-apit-{i:02d}"}}
    ext = tmp / "clouds.yaml"
    ext.write_text(yaml.safe_dump(data))
    ext.chmod(0o600)
    req_tokens = {i: token_of_cloud(str(ext), f"person-apit-{i:02d}-it") for i in range(1, N + 1)}
    db = new_db(pg_base)
    a = start_server(cat, str(ext), db, tmp)
    b = start_server(cat, str(ext), db, tmp)
    yield {"a": a, "b": b, "tokens": req_tokens, "db": db}
    stop_server(a)
    stop_server(b)


def test_concurrent_submissions_and_approvals_lose_nothing_and_never_over_commit(setup, tokens):
    a, b = setup["a"], setup["b"]

    def submit(i, k):
        s = (a, b)[(i + k) % 2]
        doc = {"department": f"apit-{i:02d}", "title": f"load {k}", "requests": [ENTRY]}
        r = s.call("POST", "/api/v1/requests", setup["tokens"][i], doc)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    with cf.ThreadPoolExecutor(max_workers=N) as pool:
        ids = list(pool.map(lambda ik: submit(*ik), [(i, k) for i in range(1, N + 1) for k in (0, 1)]))
    assert len(set(ids)) == 2 * N                                        # nothing lost, nothing doubled
    listed = a.call("GET", "/api/v1/requests", tokens["center-reviewer"]).json()
    assert sorted(r["id"] for r in listed) == sorted(ids)

    def review(rid):
        r = (a, b)[rid % 2].call("POST", f"/api/v1/requests/{rid}/review", tokens["center-reviewer"], {})
        assert r.status_code == 200, r.text
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(review, ids))

    def approver(name, order, server):
        out = {}
        for rid in order:
            r = server.call("POST", f"/api/v1/requests/{rid}/approve", tokens[name], {"reason": "load test"})
            assert r.status_code in (200, 409), r.text
            out[rid] = r.status_code
        return out
    # phase 1: per department, its two requests approved at the same moment by the two approvers
    # (a barrier per pair): the ceiling admits only one of them
    pairs = [(ids[2 * (i - 1)], ids[2 * (i - 1) + 1]) for i in range(1, N + 1)]
    gate = threading.Barrier(2)

    def paired(name, which, server):
        out = {}
        for pair in pairs:
            gate.wait()
            out.update(approver(name, [pair[which]], server))
        return out
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        f1 = pool.submit(paired, "center-approver-1", 0, a)
        f2 = pool.submit(paired, "center-approver-2", 1, b)
        f1.result(), f2.result()            # re-raise a thread's failure
    # phase 2: both approvers sweep everything, in opposite orders
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        f1 = pool.submit(approver, "center-approver-1", ids, a)
        f2 = pool.submit(approver, "center-approver-2", list(reversed(ids)), b)
        r1, r2 = f1.result(), f2.result()
    assert not any(r1[i] == 200 and r2[i] == 200 for i in ids)          # nobody approved twice

    recs = {r["id"]: r for r in a.call("GET", "/api/v1/requests", tokens["center-engineer"]).json()}
    approved = [r for r in recs.values() if r["state"] == "approved"]
    assert approved
    cap = {(c["provider"], c["zone"]): c for c in a.call("GET", "/api/v1/capacity", tokens["center-engineer"]).json()}
    for c in cap.values():
        assert c["reserved_vcpu"] <= c["vcpu"] + 1e-9                 # no zone over-committed
    per_dept = {}
    for r in approved:
        per_dept[r["department"]] = per_dept.get(r["department"], 0.0) + r["monthly_cost_cny"]
    assert all(v <= CEILING for v in per_dept.values())                 # no ceiling over-committed
    # and every request left unapproved was refused for a reason that holds
    for r in recs.values():
        if r["state"] == "approved":
            continue
        assert r["state"] == "reviewed"
        zone = (r["placements"][0]["provider"], r["placements"][0]["zone"])
        need = sum(p["vcpu"] for p in r["placements"])
        assert r["department"] in per_dept or cap[zone]["free_vcpu"] < need, r
    audit = a.call("GET", "/api/v1/audit", tokens["center-auditor"]).json()
    assert audit["intact"]
    refused = [e for e in audit["entries"] if e["action"] == "approve-refused"]
    assert len(refused) >= 2 * N - len(approved) - 0 and all(e["after"]["shortfalls"] for e in refused)
