"""Notifications at every step that waits on someone: e-mail (SMTP) and a generic JSON webhook.

``Notifier`` is the use cases' ``notify(event, record, waiting_for)``: it only enqueues (a step is
never blocked or failed by a notification); one worker thread delivers, retrying each delivery
with exponential backoff, and keeps the outcome of every attempt (``outcomes``). Recipients of
e-mail: the people of people.yaml holding the role waited on (for a department role: of the
request's department) that have an address. Messages carry ids, states and costs, never a secret.
"""
from __future__ import annotations

import json
import queue
import smtplib
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from yunshang.model import DEPARTMENT_ROLES


@dataclass
class Outcome:
    channel: str           # smtp | webhook
    event: str
    request_id: int
    attempts: int
    ok: bool
    error: str = ""


@dataclass
class Notifier:
    people: tuple = ()
    smtp_host: str = ""
    smtp_port: int = 25
    sender: str = "yunshang@localhost"
    webhook_url: str = ""
    attempts: int = 5
    backoff_seconds: float = 0.5
    timeout_seconds: float = 10.0
    outcomes: list = field(default_factory=list)

    def __post_init__(self):
        self._q: queue.Queue = queue.Queue(maxsize=10000)
        self._worker = threading.Thread(target=self._run, name="yunshang-notify", daemon=True)
        self._worker.start()

    # ---- the use cases' hook
    def __call__(self, event: str, rec, waiting_for: str) -> None:
        msg = {"event": event, "waiting_for": waiting_for,
               "request": {"id": rec.id, "department": rec.department, "title": rec.title, "state": rec.state,
                           "monthly_cost_cny": round(sum(p.monthly_cost_cny for p in rec.placements), 2)},
               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            self._q.put_nowait(msg)
        except queue.Full:
            self.outcomes.append(Outcome("queue", event, rec.id, 0, False, "notification queue full"))

    def recipients(self, waiting_for: str, department: str) -> list[str]:
        return sorted(p.email for p in self.people if waiting_for in p.roles and p.email
                      and (waiting_for not in DEPARTMENT_ROLES or p.department == department))

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued message was delivered or given up (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False

    # ---- delivery
    def _run(self) -> None:
        while True:
            msg = self._q.get()
            try:
                if self.smtp_host:
                    to = self.recipients(msg["waiting_for"], msg["request"]["department"])
                    if to:
                        self._retry("smtp", msg, lambda msg=msg, to=to: self._mail(msg, to))
                if self.webhook_url:
                    self._retry("webhook", msg, lambda msg=msg: self._post(msg))
            finally:
                self._q.task_done()

    def _retry(self, channel: str, msg: dict, send) -> None:
        err = ""
        for i in range(1, self.attempts + 1):
            try:
                send()
                self.outcomes.append(Outcome(channel, msg["event"], msg["request"]["id"], i, True))
                return
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                err = type(exc).__name__ + (f" {exc.code}" if hasattr(exc, "code") else "")
                time.sleep(self.backoff_seconds * 2 ** (i - 1))
        self.outcomes.append(Outcome(channel, msg["event"], msg["request"]["id"], self.attempts, False, err))

    def _mail(self, msg: dict, to: list[str]) -> None:
        r = msg["request"]
        m = EmailMessage()
        m["From"], m["To"] = self.sender, ", ".join(to)
        m["Subject"] = f"[yunshang] request {r['id']} ({r['department']}) is {r['state']}: waiting for {msg['waiting_for']}"
        m.set_content(f"Request {r['id']} of {r['department']}: {r['title']}\n"
                      f"State: {r['state']}; monthly cost {r['monthly_cost_cny']:.2f} CNY.\n"
                      f"Waiting for: {msg['waiting_for']}.\n")
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as s:
            s.send_message(m)

    def _post(self, msg: dict) -> None:
        req = urllib.request.Request(self.webhook_url, data=json.dumps(msg, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_seconds) as resp:
            if resp.status >= 300:
                raise ValueError(f"webhook answered {resp.status}")
