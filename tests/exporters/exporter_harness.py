"""Harness for the exporter's integration tests: real processes on 127.0.0.1.

* ``ExporterProc``  ``yunshang exporter serve`` as a subprocess (the real CLI, real collectors).
* ``PrometheusProc`` the Debian ``prometheus`` binary with its own data dir and a free port.
* ``AlertmanagerProc`` the Debian ``prometheus-alertmanager`` with a webhook receiver served by the test.

Every process is started by the test, in its own session, and stopped by its own PID.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "prefecture"
RULES = ROOT / "exporters" / "rules" / "yunshang.rules.yml"


# The departments these tests seed on the shared devcloud are their own (tests/own_catalog.py):
# copies of the sample's health and transport under a prefix no sample nor `make demo` uses.
TEST_PREFIX = "exptest-"


def own_catalog(dest: pathlib.Path) -> pathlib.Path:
    from tests.own_catalog import own_catalog as _own

    return _own(dest, TEST_PREFIX, ("health", "transport"))


def test_contract(contract_id: str) -> str:
    from tests.own_catalog import own_contract

    return own_contract(TEST_PREFIX, contract_id)


test_contract.__test__ = False     # a helper, not a pytest test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(binary: str, package: str) -> str:
    exe = shutil.which(binary)
    if exe is None:
        pytest.fail(f"{binary} not found: install the Debian package `{package}` (make system-deps)")
    return exe


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def process_tree(pid: int) -> list[int]:
    """pid and every descendant, from /proc (gone processes are skipped)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in pathlib.Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def tree_status_kib(pid: int, field: str) -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM: kiB) summed over pid and its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in pathlib.Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, /proc/PID/stat) summed over pid and its live descendants."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


class Proc:
    def __init__(self, argv: list[str], log: pathlib.Path, env: dict | None = None, cwd=None):
        self.log = log
        self._fh = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self._fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self._fh.close()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class ExporterProc(Proc):
    def __init__(self, tmp: pathlib.Path, clouds_file: str, operators: list[str], catalog: pathlib.Path = CATALOG,
                 interval: float = 2.0, probe_interval: float = 1.0, name: str = "exporter"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.state_file = tmp / f"{name}-probes.json"
        argv = [sys.executable, "-m", "cli.main", "exporter", "serve", "--listen", f"127.0.0.1:{self.port}",
                "--catalog", str(catalog), "--clouds", clouds_file, "--interval", str(interval),
                "--probe-interval", str(probe_interval), "--state-file", str(self.state_file), "-v"]
        for op in operators:
            argv += ["--operator", op]
        env = dict(os.environ)
        env.pop("OS_CLOUD", None)
        super().__init__(argv, tmp / f"{name}.log", env=env, cwd=ROOT)
        wait_until(lambda: self.alive() and http_get(self.url), 30, f"exporter on :{self.port}\n{self.tail()}")

    def metrics(self) -> str:
        return http_get(self.url).decode()

    def value(self, name: str, **labels) -> float | None:
        from prometheus_client.parser import text_string_to_metric_families

        for fam in text_string_to_metric_families(self.metrics()):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    def pids(self) -> list[int]:
        """The server and its descendants (the collector process, multiprocessing's resource tracker)."""
        return process_tree(self.pid)

    def rss_bytes(self) -> int:
        """Resident memory of the whole exporter: the serving process and its collector process."""
        return tree_status_kib(self.pid, "VmRSS") * 1024


class PrometheusProc(Proc):
    def __init__(self, tmp: pathlib.Path, targets: list[str], rule_files: list[pathlib.Path],
                 alertmanager: str | None = None, scrape_interval: str = "1s", eval_interval: str = "1s"):
        exe = need("prometheus", "prometheus")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        d = tmp / f"prom-{self.port}"
        (d / "data").mkdir(parents=True)
        cfg = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": eval_interval},
               "rule_files": [str(p) for p in rule_files],
               "scrape_configs": [{"job_name": "yunshang", "static_configs": [{"targets": targets}]}]}
        if alertmanager:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        (d / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        super().__init__([exe, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                          "--storage.tsdb.retention.time=1d"], d / "prometheus.log", cwd=d)
        wait_until(lambda: self.alive() and http_get(f"{self.base}/-/ready"), 60, f"prometheus ready\n{self.tail()}")

    def query(self, expr: str) -> dict:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            return json.loads(http_get(url))
        except urllib.error.HTTPError as exc:     # 400 on a parse error: the body says why
            return json.loads(exc.read())

    def series(self, expr: str) -> list[dict]:
        r = self.query(expr)
        assert r["status"] == "success", f"{expr}: {r.get('errorType')}: {r.get('error')}"
        return r["data"]["result"]


class Webhook:
    """A tiny HTTP receiver recording what Alertmanager posts."""

    def __init__(self):
        self.posts: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                outer.posts.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict]:
        return [a for p in self.posts for a in p.get("alerts", [])]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class AlertmanagerProc(Proc):
    def __init__(self, tmp: pathlib.Path, webhook_url: str):
        exe = need("prometheus-alertmanager", "prometheus-alertmanager")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        d = tmp / f"am-{self.port}"
        d.mkdir()
        cfg = {"route": {"receiver": "test", "group_by": ["alertname", "operator"], "group_wait": "1s",
                         "group_interval": "1s", "repeat_interval": "1h"},
               "receivers": [{"name": "test", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}]}
        (d / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
        super().__init__([exe, f"--config.file={d / 'alertmanager.yml'}", f"--storage.path={d}",
                          f"--web.listen-address={self.addr}", "--cluster.listen-address="], d / "am.log", cwd=d)
        wait_until(lambda: self.alive() and http_get(f"http://{self.addr}/-/ready"), 30, f"alertmanager\n{self.tail()}")


@pytest.fixture
def procs():
    """Collects processes a test starts; stops them all (by PID) afterwards."""
    started: list = []
    yield started
    for p in reversed(started):
        p.stop() if hasattr(p, "stop") else p.close()
