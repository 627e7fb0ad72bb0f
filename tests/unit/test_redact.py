"""yunshang.redact: every secret form masked, everything else left exactly as it was."""
from __future__ import annotations

import logging

import pytest

from yunshang import redact as r
from yunshang.errors import InputInvalid, Problem, YunshangError

MASKED = [
    ("postgresql://ys:S3cret@db/ys", "postgresql://ys:***@db/ys"),
    ("postgresql://:S3cret@db:5432/ys", "postgresql://:***@db:5432/ys"),
    ("postgresql://u:p/a?s#s@h/db", "postgresql://u:***@h/db"),           # a password holding / ? #
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),              # ... and an @
    ("https://tok3n@svc/health", "https://***@svc/health"),
    ("https://svc/health?token=abc&x=1", "https://svc/health?token=***&x=1"),
    ("http://h/?password=a&api_key=b&sslpassword=c", "http://h/?password=***&api_key=***&sslpassword=***"),
    ("host=db password='a b' user=ys", "host=db password='***' user=ys"),
    ("host=db password=abc port=5", "host=db password=*** port=5"),
    ("OS_PASSWORD=abc", "OS_PASSWORD=***"),
    ("{'password': 'S3cret', 'username': 'admin'}", "{'password': '***', 'username': 'admin'}"),
    ('{"admin_password": "zz", "project_name": "p"}', '{"admin_password": "***", "project_name": "p"}'),
    ("application_credential_secret: xyz", "application_credential_secret: ***"),
    ("X-Auth-Token: gAAAA123", "X-Auth-Token: ***"),
    ("Authorization: Bearer eyJ.x", "Authorization: Bearer ***"),
    ("Authorization: Basic dXNlcjpwdw==", "Authorization: Basic ***"),
    ("error at http://kuser:pw@127.0.0.1:1/v3 (refused)", "error at http://kuser:***@127.0.0.1:1/v3 (refused)"),
]
UNCHANGED = [
    "496 passed in 3s", "tokens: 5", "token_type: bearer", "keystone at http://127.0.0.1:5000/v3",
    "secret: true", "'secret': True", "password: null", "departments/health.yaml:12: probes[0].kind: expected http or tcp",
    "2026-11-01T00:00:00+00:00", "ssh root@10.0.0.2 -p 2222", "contact: wj-admin@gov.example.cn", "",
]


@pytest.mark.parametrize("text,expected", MASKED)
def test_secret_forms_are_masked(text, expected):
    assert r.redact(text) == expected
    assert r.redact(expected) == expected                  # idempotent


@pytest.mark.parametrize("text", UNCHANGED)
def test_other_text_is_left_alone(text):
    assert r.redact(text) == text


def test_known_values_are_masked_anywhere():
    assert r.redact('missing "=" after "hunter22x" in dsn', known=["hunter22x"]) == 'missing "=" after "***" in dsn'
    assert r.redact("ab", known=["ab"]) == "ab"             # too short to be told from ordinary text


def test_url_and_mapping_secrets():
    assert r.url_secrets("postgresql://u:pw1@h/db?sslpassword=zz&x=1") == ("pw1", "zz")
    assert r.url_secrets("https://tok@h/") == ("tok",)
    assert r.url_secrets("http://h:9090") == ()
    doc = {"clouds": {"a": {"auth": {"auth_url": "http://u:q1@h", "password": "p2", "username": "x"}}}}
    assert r.mapping_secrets(doc) == ("q1", "p2")


def test_redact_obj_masks_values_under_secret_keys_and_keeps_types():
    data = {"password": "p", "secret": True, "token": "", "n": 3, "probes": [{"target": "https://u:pw@h/?token=t"}],
            "t": ("http://a:b@c",)}
    assert r.redact_obj(data) == {"password": "***", "secret": True, "token": "", "n": 3,
                                  "probes": [{"target": "https://u:***@h/?token=***"}], "t": ["http://a:***@c"]}


def test_every_project_error_is_redacted_when_made():
    assert str(YunshangError("cannot reach postgresql://u:pw@h/db")) == "cannot reach postgresql://u:***@h/db"
    e = InputInvalid([Problem("req.yaml", "probes[0].target", "bad URL 'https://u:pw@h'")])
    assert "pw@" not in str(e) and "https://u:***@h" in str(e)


def test_exception_text_is_one_redacted_line():
    exc = ValueError("nonnumeric port: 'pw9@h'\nsecond line password=x")
    assert r.exception_text(exc, known=["pw9"]) == "nonnumeric port: '***@h'"
    assert r.exception_text(ValueError()) == "ValueError"


def test_log_records_are_redacted(caplog):
    logger = logging.getLogger("yunshang.test-redact")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        r.install_log_redaction(logger)
        assert isinstance(handler.formatter, r.RedactingFormatter)
        rec = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "contacting %s", ("http://u:pw@h/v3",), None)
        assert handler.format(rec) == "contacting http://u:***@h/v3"
    finally:
        logger.removeHandler(handler)
