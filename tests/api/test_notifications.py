"""Notifications through a real SMTP server (aiosmtpd, started here) and a JSON webhook that fails
twice, then answers slowly: the step is never blocked, the failed delivery is retried, the right
people get the mail."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.conftest import SAMPLE, free_port, new_db, start_server, stop_server

pytestmark = pytest.mark.cloud


@pytest.fixture()
def smtp():
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.mails = []

        async def handle_DATA(self, server, session, envelope):
            self.mails.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    h = Handler()
    c = Controller(h, hostname="127.0.0.1", port=free_port())
    c.start()
    yield c, h
    c.stop()


@pytest.fixture()
def webhook():
    state = {"calls": 0, "got": [], "gate": threading.Event()}

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["calls"] += 1
            if state["calls"] <= 2:
                self.send_response(500)
                self.end_headers()
                return
            state["gate"].wait(10)            # a slow receiver: the step must not wait for it
            state["got"].append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/hook", state
    state["gate"].set()
    srv.shutdown()


def _wait(cond, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_mail_and_webhook_at_every_waiting_step_retried_never_blocking(clouds, pg_base, tokens, tmp_path, smtp,
                                                                        webhook):
    (ctl, mails), (url, hook) = smtp, webhook
    s = start_server(SAMPLE, clouds, new_db(pg_base), tmp_path,
                     extra=("--smtp", f"127.0.0.1:{ctl.port}", "--webhook", url))
    try:
        r = s.call("POST", "/api/v1/requests", tokens["health-it"], {"department": "health", "title": "notify", "requests": [
            {"name": "n", "template": "web-standard", "size": "small", "count": 1}]})
        assert r.status_code == 201                      # answered while the webhook is failing / gated
        rid = r.json()["id"]
        assert hook["got"] == []
        assert _wait(lambda: any(rc == ["health-head@gov.example.cn"] for rc, _ in mails.mails))
        hook["gate"].set()
        assert _wait(lambda: hook["got"])
        assert hook["calls"] >= 3                        # two failures, then delivered
        first = hook["got"][0]
        assert first["event"] == "submitted" and first["waiting_for"] == "department-head"
        assert first["request"]["id"] == rid and first["request"]["department"] == "health"
        assert s.call("POST", f"/api/v1/requests/{rid}/endorse", tokens["health-head"]).status_code == 200
        assert _wait(lambda: any(rc == ["center-reviewer@gov.example.cn"] for rc, _ in mails.mails))
        body = next(b for rc, b in mails.mails if rc == ["center-reviewer@gov.example.cn"])
        assert f"request {rid} (health) is endorsed: waiting for reviewer" in body
        for t in tokens.values():
            assert t not in body and all(t not in json.dumps(g) for g in hook["got"])
    finally:
        stop_server(s)
