"""schemathesis over the API's own OpenAPI document, against a real server process (real Keystone
tokens, real PostgreSQL): no 5xx, every response as documented (schema, content type), for a
requester and for an engineer; the audit log still verifies afterwards."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.cloud


def test_no_server_error_and_no_schema_violation(api_pair, tokens):
    import schemathesis

    a = api_pair["a"]
    schema = schemathesis.openapi.from_url(a.url + "/api/v1/openapi.json")
    failures = []
    for person in ("health-it", "center-engineer"):
        for op in schema.get_all_operations():
            operation = op.ok()
            try:
                _fuzzer(operation, tokens[person], a.url)()
            except BaseException as exc:  # noqa: BLE001 - failure groups too; collected and shown all at once
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{person} {operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, "\n".join(failures)
    audit = a.call("GET", "/api/v1/audit", tokens["center-auditor"]).json()
    assert audit["intact"]


def _fuzzer(operation, token, url):
    """A hypothesis test of one operation as the holder of ``token`` (5xx, schema, content type)."""
    import hypothesis
    from schemathesis import checks

    @hypothesis.settings(max_examples=12, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), derandomize=True)
    @hypothesis.given(case=operation.as_strategy())
    def run(case):
        case.headers = {**(case.headers or {}), "X-Auth-Token": token}
        if case.path.endswith("/configure") and isinstance(case.body, dict):
            case.body["engine"] = "pulumi"            # never a real apply from a fuzzer
        resp = case.call(base_url=url, timeout=60)
        case.validate_response(resp, checks=(checks.not_a_server_error,
                                             checks.response_schema_conformance,
                                             checks.content_type_conformance))
    return run
