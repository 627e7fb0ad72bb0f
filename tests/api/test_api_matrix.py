"""Every endpoint of the OpenAPI document x every person of people.yaml (every role) x own / other
department: allowed exactly when yunshang.authz says so; refused with 403 (or 404 where existence
must not leak) and no data otherwise; 401 without a token. The audit log verifies afterwards."""
from __future__ import annotations

import pytest

from yunshang.authz import Identity, may

pytestmark = pytest.mark.cloud

# (method, path) -> (authz action, whose department the object is: "request" | "path" | None)
ACTIONS = {
    ("get", "/api/v1/whoami"): (None, None),
    ("get", "/api/v1/departments/{department}/offer"): ("catalog.read", "path"),
    ("get", "/api/v1/requests"): ("request.read", None),
    ("post", "/api/v1/requests"): ("request.submit", "body"),
    ("get", "/api/v1/queue"): ("request.read", None),
    ("get", "/api/v1/requests/{request_id}"): ("request.read", "request"),
    ("post", "/api/v1/requests/{request_id}/endorse"): ("request.endorse", "request"),
    ("post", "/api/v1/requests/{request_id}/review"): ("request.review", "request"),
    ("post", "/api/v1/requests/{request_id}/approve"): ("request.approve", "request"),
    ("post", "/api/v1/requests/{request_id}/reject"): ("request.reject", "request"),
    ("post", "/api/v1/requests/{request_id}/configure"): ("request.configure", "request"),
    ("post", "/api/v1/requests/{request_id}/publish"): ("request.publish", "request"),
    ("post", "/api/v1/requests/{request_id}/plan-reclaim"): ("request.plan-reclaim", "request"),
    ("post", "/api/v1/requests/{request_id}/reclaim"): ("request.reclaim", "request"),
    ("post", "/api/v1/requests/{request_id}/keep"): ("request.keep", "request"),
    ("get", "/api/v1/departments/{department}/bills/{month}"): ("bill.read", "path"),
    ("get", "/api/v1/departments/{department}/bills/{month}/statement"): ("bill.read", "path"),
    ("get", "/api/v1/audit"): ("audit.read", None),
    ("get", "/api/v1/capacity"): ("capacity.read", None),
}
BODIES = {"review": {}, "configure": {"engine": "pulumi"},   # never a real apply from this test
          "approve": {"reason": "matrix"}, "reject": {"reason": "matrix"}, "plan-reclaim": {"reason": "matrix"},
          "reclaim": {"reason": "matrix"}, "keep": {"reason": "matrix"}}


def _identity(me: dict) -> Identity:
    return Identity(me["user_id"], me["name"], frozenset(me["roles"]), me["department"] or "")


def test_every_endpoint_every_role_own_and_other_department(api_pair, tokens):
    a = api_pair["a"]
    doc = a.call("GET", "/api/v1/openapi.json").json()
    endpoints = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert endpoints == set(ACTIONS), "an endpoint without a row in the matrix (or a row without an endpoint)"
    people = {n: _identity(a.call("GET", "/api/v1/whoami", t).json()) for n, t in tokens.items()}
    checked = 0
    for (method, path), (action, scope) in sorted(ACTIONS.items()):
        for dept in ("health", "finance"):           # the object belongs to health, or to finance
            for name, who in sorted(people.items()):
                # a fresh object per call: earlier allowed calls must not change what this one meets
                rid = a.call("POST", "/api/v1/requests", tokens[f"{dept}-it"], {
                    "department": dept, "title": "matrix", "requests": [
                        {"name": "m", "template": "web-standard", "size": "small", "count": 1}]}).json()["id"]
                url = path.replace("{request_id}", str(rid)).replace("{department}", dept) \
                          .replace("{month}", "2026-11")
                body = None
                if method == "post":
                    step = url.rsplit("/", 1)[-1]
                    body = BODIES.get(step)
                    if url == "/api/v1/requests":
                        body = {"department": dept, "requests": [
                            {"name": "m2", "template": "web-standard", "size": "small", "count": 1}]}
                r = a.call(method.upper(), url, tokens[name], body)
                allowed = True if action is None else may(who, action, dept if scope else None)
                where = f"{method.upper()} {path} as {name} on {dept}'s: {r.status_code} {r.text[:200]}"
                if allowed:
                    assert r.status_code not in (401, 403, 404) and r.status_code < 500, where
                else:
                    assert r.status_code in (403, 404), where
                    assert r.json() in ({"error": "forbidden"}, {"error": "not found"}), where
                r = a.call(method.upper(), url, None, body)
                assert r.status_code == 401 and r.json() == {"error": "unauthorized"}, where
                checked += 1
    assert checked == len(ACTIONS) * 2 * len(people)
    audit = a.call("GET", "/api/v1/audit", tokens["center-auditor"]).json()
    assert audit["intact"] and audit["checked"] > checked


def test_listing_is_limited_to_the_department(api_pair, tokens):
    a = api_pair["a"]
    for name, dept in (("health-it", "health"), ("health-head", "health"), ("finance-it", "finance")):
        got = a.call("GET", "/api/v1/requests", tokens[name]).json()
        assert got and {r["department"] for r in got} == {dept}
    assert {r["department"] for r in a.call("GET", "/api/v1/requests", tokens["center-auditor"]).json()} \
        >= {"health", "finance"}
