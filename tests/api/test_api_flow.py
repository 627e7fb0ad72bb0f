"""A request through the API from submit to published, as the right people, on two API processes
sharing one PostgreSQL database; tokens refused when missing, bad or revoked."""
from __future__ import annotations

import time

import pytest
import yaml

from tests.api.conftest import ROOT

pytestmark = pytest.mark.cloud

DOC = yaml.safe_load((ROOT / "examples" / "requests" / "health-vaccine.yaml").read_text())


def test_openapi_document_lists_the_endpoints(api_pair):
    doc = api_pair["a"].call("GET", "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    for p in ("/api/v1/requests", "/api/v1/requests/{request_id}/approve", "/api/v1/audit", "/api/v1/capacity",
              "/api/v1/departments/{department}/offer", "/api/v1/departments/{department}/bills/{month}/statement"):
        assert p in paths
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-Auth-Token"


def test_no_token_a_bad_token_and_a_revoked_one_are_refused(api_pair, clouds):
    from yunshang.openstack.identity import revoke_token, token_of_cloud

    a = api_pair["a"]
    r = a.call("GET", "/api/v1/requests")
    assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
    assert a.call("GET", "/api/v1/requests", token="gAAAAAnot-a-token").status_code == 401
    t = token_of_cloud(clouds, "person-health-it")
    assert a.call("GET", "/api/v1/whoami", token=t).json()["name"] == "health-it"
    revoke_token(clouds, "center", t)
    time.sleep(1.5)                                     # the servers trust a validated token for 1 s
    assert a.call("GET", "/api/v1/whoami", token=t).status_code == 401
    assert api_pair["b"].call("GET", "/api/v1/whoami", token=t).status_code == 401


def test_a_request_from_submit_to_published_across_two_processes(api_pair, tokens):
    a, b = api_pair["a"], api_pair["b"]
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], DOC)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["submitted_by"].startswith("health-it (keystone:")
    # the other process serves the same data
    assert b.call("GET", f"/api/v1/requests/{rid}", tokens["health-head"]).json()["state"] == "submitted"
    # finance's requester sees neither the request nor that it exists
    r = b.call("GET", f"/api/v1/requests/{rid}", tokens["finance-it"])
    assert r.status_code == 404 and r.json() == {"error": "not found"}
    assert b.call("GET", "/api/v1/requests", tokens["finance-it"]).json() == []
    # the chain: the reviewer must wait for the department head
    r = a.call("POST", f"/api/v1/requests/{rid}/review", tokens["center-reviewer"], {"date": "2026-11-26"})
    assert r.status_code == 409 and "endorse" in r.json()["error"]
    assert b.call("GET", "/api/v1/queue", tokens["health-head"]).json()[0]["id"] == rid
    assert b.call("POST", f"/api/v1/requests/{rid}/endorse", tokens["health-head"]).json()["state"] == "endorsed"
    r = a.call("POST", f"/api/v1/requests/{rid}/review", tokens["center-reviewer"], {"date": "2026-11-26"})
    assert r.status_code == 200 and r.json()["state"] == "reviewed" and r.json()["monthly_cost_cny"] > 0
    # the wrong people
    assert a.call("POST", f"/api/v1/requests/{rid}/approve", tokens["center-reviewer"],
                  {"reason": "x"}).status_code == 403
    assert a.call("POST", f"/api/v1/requests/{rid}/approve", tokens["health-head"],
                  {"reason": "x"}).status_code == 403
    r = b.call("POST", f"/api/v1/requests/{rid}/approve", tokens["center-approver-1"], {"reason": "within ceiling"})
    assert r.status_code == 200 and r.json()["state"] == "approved"
    assert a.call("POST", f"/api/v1/requests/{rid}/publish", tokens["center-approver-1"]).status_code == 403
    # configure builds a recorded plan: one that does not exist is refused before any engine runs
    r = a.call("POST", f"/api/v1/requests/{rid}/configure", tokens["center-engineer"], {"engine": "pulumi", "plan": 999})
    assert r.status_code == 404
    # configure is an engineer's (pulumi absent here: refused in one line, nothing recorded)
    r = a.call("POST", f"/api/v1/requests/{rid}/configure", tokens["center-engineer"], {"engine": "pulumi"})
    assert r.status_code in (409, 422) and "pulumi" in r.json()["error"]
    cap = a.call("GET", "/api/v1/capacity", tokens["center-approver-2"]).json()
    assert sum(c["reserved_vcpu"] for c in cap) > 0
    assert a.call("GET", "/api/v1/capacity", tokens["health-it"]).status_code == 403
    offer = a.call("GET", "/api/v1/departments/health/offer", tokens["health-it"]).json()
    primary = next(c for c in offer["contracts"] if c["id"] == "WJ-2025-01")
    assert primary["committed_cny_per_month"] > 0 and primary["left_cny_per_month"] < primary["ceiling_cny_per_month"]
    audit = a.call("GET", f"/api/v1/audit?request={rid}", tokens["center-auditor"]).json()
    assert audit["intact"] and [e["action"] for e in audit["entries"]] == ["submit", "endorse", "review", "approve"]
    assert audit["entries"][-1]["actor"].startswith("center-approver-1 (keystone:")
    assert a.call("GET", "/api/v1/audit", tokens["health-head"]).status_code == 403


def test_bills_and_the_statement_for_the_own_department_only(api_pair, tokens):
    a = api_pair["a"]
    r = a.call("GET", "/api/v1/departments/health/bills/2026-11", tokens["health-it"])
    assert r.status_code == 200 and r.json()["departments"][0]["department"] == "health"
    r = a.call("GET", "/api/v1/departments/health/bills/2026-11/statement", tokens["health-head"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<html" in r.text.lower()
    assert a.call("GET", "/api/v1/departments/health/bills/2026-11", tokens["finance-it"]).status_code == 404
    assert a.call("GET", "/api/v1/departments/finance/bills/2026-11", tokens["center-auditor"]).status_code == 200


def test_hostile_bodies_are_refused(api_pair, tokens):
    a = api_pair["a"]
    big = b'{"department": "health", "title": "' + b"x" * 1_100_000 + b'", "requests": []}'
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], data=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    bomb = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
            + "".join(f'{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n'
                      for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], data=bomb.encode(),
               headers={"Content-Type": "application/yaml"})
    assert r.status_code == 400 and len(r.content) < 10000 and "alias bomb" in r.json()["problems"][0]
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], data=b"department: health",
               headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/yaml" in r.json()["error"]
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], {"department": "health", "requests": [
        {"name": "x", "template": "nope", "size": "small", "count": 1}]})
    assert r.status_code == 400 and "unknown template 'nope'" in r.json()["problems"][0]
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], {"department": "finance", "requests": [
        {"name": "x", "template": "web-standard", "size": "small", "count": 1}]})
    assert r.status_code == 403                          # another department's document


def test_the_cli_yaml_file_is_a_submit_body_and_hostile_yaml_writes_nothing(api_pair, tokens):
    """The very file of `request submit` as application/yaml (and application/x-yaml); an alias bomb and
    a duplicate key refused with 400 naming file, field/line and what was expected; nothing stored."""
    a, b = api_pair["a"], api_pair["b"]
    raw = (ROOT / "examples" / "requests" / "health-vaccine.yaml").read_bytes()
    doc = a.call("GET", "/api/v1/openapi.json").json()
    body = doc["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/yaml", "application/x-yaml"} <= set(body)
    r = a.call("POST", "/api/v1/requests", tokens["health-it"], data=raw,
               headers={"Content-Type": "application/yaml; charset=utf-8"})
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["document"]["department"] == "health" and got["source_file"] == "api"
    assert [q["name"] for q in got["document"]["requests"]] == [q["name"] for q in DOC["requests"]]
    assert got["submitted_by"].startswith("health-it (keystone:")
    # the YAML and the JSON of one document are one request document (one schema, the MLPS default too)
    rj = b.call("POST", "/api/v1/requests", tokens["health-it"], DOC).json()
    assert rj["document"]["requests"] == got["document"]["requests"]
    # another department's YAML: refused like its JSON
    other = raw.replace(b"department: health", b"department: finance")
    assert a.call("POST", "/api/v1/requests", tokens["health-it"], data=other,
                  headers={"Content-Type": "application/x-yaml"}).status_code == 403

    def count():
        return len(a.call("GET", "/api/v1/requests?limit=1000", tokens["center-auditor"]).json())

    before = count()
    bomb = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
            + "".join(f'{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n'
                      for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
    dup = ("department: health\nrequests:\n  - {name: a, template: web-standard, size: small, count: 1}\n"
           "department: finance\n")
    bad = "department: health\nrequests:\n  - {name: a, template: web-standard, size: small, count: many}\n"
    for text, kind, want in ((bomb, "application/yaml", ":7: too many values once aliases are expanded"),
                             (dup, "application/x-yaml", ":4: duplicate key 'department' (first on line 1)"),
                             (bad, "application/yaml", ":3: requests[0].count: expected an integer from 1")):
        r = a.call("POST", "/api/v1/requests", tokens["health-it"], data=text.encode(),
                   headers={"Content-Type": kind})
        assert r.status_code == 400, r.text
        [problem] = r.json()["problems"]
        assert problem.startswith("request body (YAML)") and want in problem, problem
        assert "Traceback" not in r.text and len(r.content) < 2000
    assert count() == before                               # nothing written
    log = a.call("GET", "/api/v1/audit", tokens["center-auditor"]).json()
    assert log["intact"]


def test_secrets_in_query_strings_are_masked_in_the_access_log(api_pair, tokens):
    """uvicorn's access log carries the URL with its query string: a canary password / token typed
    into a URL reaches the log masked (the line itself is there, so the check can fail)."""
    import time as _t

    a = api_pair["a"]
    canary = "CANARY" + str(int(_t.time() * 1000))
    for path in (f"/api/v1/requests?password={canary}pw&limit=5", f"/api/v1/whoami?token={canary}tk",
                 f"/api/v1/nothing-here?X-Auth-Token={canary}hd", f"/portal/login?os_password={canary}os"):
        a.call("GET", path, tokens["health-it"])
    deadline = _t.monotonic() + 10
    while _t.monotonic() < deadline:
        text = a.log.read_text(errors="replace")
        if "/portal/login?os_password=" in text:
            break
        _t.sleep(0.2)
    assert "GET /api/v1/requests?password=***&limit=5" in text, text[-2000:]
    assert "/api/v1/whoami?token=***" in text and "/api/v1/nothing-here?X-Auth-Token=***" in text
    assert canary not in text


def test_tokens_never_reach_the_logs(api_pair, tokens):
    for s in (api_pair["a"], api_pair["b"]):
        text = s.log.read_text(errors="replace")
        for t in tokens.values():
            assert t not in text


def test_above_the_threshold_two_different_approvers_and_nobody_approves_their_own_review(api_pair, tokens, clouds):
    from yunshang.openstack.identity import ensure_person, token_of_cloud
    import secrets as _s

    a = api_pair["a"]
    big = {"department": "health", "title": "big", "requests": [
        {"name": "big-web", "template": "web-standard", "size": "large", "count": 220}]}
    rid = a.call("POST", "/api/v1/requests", tokens["health-it"], big).json()["id"]
    a.call("POST", f"/api/v1/requests/{rid}/endorse", tokens["health-head"])
    r = a.call("POST", f"/api/v1/requests/{rid}/review", tokens["center-reviewer"], {"date": "2026-11-26"})
    assert r.status_code == 200, r.text
    assert r.json()["monthly_cost_cny"] > 100000
    r = a.call("POST", f"/api/v1/requests/{rid}/approve", tokens["center-approver-1"], {"reason": "one"})
    assert r.status_code == 200 and r.json()["state"] == "first-approved"
    r = a.call("POST", f"/api/v1/requests/{rid}/approve", tokens["center-approver-1"], {"reason": "again"})
    assert r.status_code == 409 and "different approver" in r.json()["error"]
    # a person who is both reviewer and approver may not approve what they reviewed
    pw = _s.token_urlsafe(16)
    ensure_person(clouds, "center", "apitest-rev-appr", "center", ["reviewer", "approver"], pw)
    import yaml

    data = yaml.safe_load(open(clouds, encoding="utf-8"))
    c = data["clouds"]["center"]
    data["clouds"]["person-apitest-rev-appr"] = {**c, "auth": {**c["auth"], "username": "apitest-rev-appr",
                                                               "password": pw, "project_name": "center"}}
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(data, fh)
    both = token_of_cloud(fh.name, "person-apitest-rev-appr")
    rid2 = a.call("POST", "/api/v1/requests", tokens["health-it"], {"department": "health", "requests": [
        {"name": "small-web", "template": "web-standard", "size": "small", "count": 1}]}).json()["id"]
    a.call("POST", f"/api/v1/requests/{rid2}/endorse", tokens["health-head"])
    assert a.call("POST", f"/api/v1/requests/{rid2}/review", both, {"date": "2026-11-26"}).status_code == 200
    r = a.call("POST", f"/api/v1/requests/{rid2}/approve", both, {"reason": "mine"})
    assert r.status_code == 409 and "separation of duties" in r.json()["error"]
    r = a.call("POST", f"/api/v1/requests/{rid}/approve", tokens["center-approver-2"], {"reason": "two"})
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
