"""Background collection and the /metrics server.

``Exporter`` owns one worker thread per operator (so at most one refresh of an operator is in
flight; a global semaphore bounds how many operators are read at once) and one probe thread.
After every refresh or probe round it renders the registry once and keeps the bytes; the HTTP
handler only hands those bytes out, so a scrape never waits on OpenStack and never fails because
an operator is down (that operator's ``yunshang_operator_up`` is 0).

``exporter serve`` runs the ``Exporter`` in a child process (``CollectorProcess``): the child
reads OpenStack, parses its JSON and renders; every rendered page (plain and gzip) comes to the
serving process over a pipe. The serving process only answers scrapes, so a scrape never waits
for the interpreter lock while a refresh parses tens of MB of JSON or renders 100,000 series
(issue 14: scrape p99 107 ms at 7,911 servers while refreshing, in one process). The child runs
at a lower CPU priority (``COLLECTOR_NICENESS``): when the cores are busy, the kernel runs a
waiting scrape before the refresh's parsing, which only finishes a little later.

Dependencies come in through the constructor: ``read_snapshot(provider) -> OperatorSnapshot``
(``yunshang.openstack.capacity.read_operator_snapshot`` in production) and
``read_service_catalog(provider) -> [ {type, endpoints: [...]}, ... ]`` (Keystone's catalog).
"""
from __future__ import annotations

import datetime as dt
import gzip
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from yunshang import sla
from yunshang.capacity import OperatorSnapshot
from yunshang.model import Catalog, Provider
from yunshang.redact import exception_text

from exporters.collectors import (CapacityCollector, QuotaCollector, SelfCollector, SiteCollector, SlaCollector,
                                  SpendCollector, utc_now)
from exporters.probes import ProbeTarget, department_targets, identity_target, probe_once, service_targets
from exporters.state import ExporterState, ProbeResult
from exporters.store import ProbeStore

log = logging.getLogger("yunshang.exporter")

SnapshotReader = Callable[[Provider], OperatorSnapshot]
ServiceCatalogReader = Callable[[Provider], list]


class Exporter:
    def __init__(self, catalog: Catalog, operators: list[str], read_snapshot: SnapshotReader,
                 store: ProbeStore, read_service_catalog: ServiceCatalogReader | None = None,
                 clouds_file: str | None = None, interval_seconds: float = 30.0,
                 probe_interval_seconds: float = 15.0, probe_timeout_seconds: float = 5.0,
                 max_concurrency: int = 4, clock: Callable[[], dt.datetime] = utc_now,
                 service_catalog_every_seconds: float = 600.0):
        self.catalog = catalog
        self.operators = list(operators)
        self.providers = {op: catalog.provider(op) for op in self.operators}
        self.read_snapshot = read_snapshot
        self.read_service_catalog = read_service_catalog
        self.store = store
        self.clouds_file = clouds_file
        self.interval_seconds = interval_seconds
        self.probe_interval_seconds = probe_interval_seconds
        self.probe_timeout_seconds = probe_timeout_seconds
        self.clock = clock
        self.service_catalog_every_seconds = service_catalog_every_seconds
        self.state = ExporterState(self.operators)
        self._sem = threading.BoundedSemaphore(max(1, max_concurrency))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._render_lock = threading.Lock()
        self._page = b""
        self._page_gzip = b""
        self.publish: Callable[[bytes, bytes], None] | None = None   # called with every new page (under the lock)
        self._targets_lock = threading.Lock()
        self._api_targets: dict[str, list[ProbeTarget]] = {}
        self._api_targets_at: dict[str, float] = {}
        for op, prov in self.providers.items():
            ident = identity_target(prov, clouds_file)
            self._api_targets[op] = [ident] if ident else []
        self._dept_targets = department_targets(catalog, self.operators, clock().date())
        self.registry = CollectorRegistry(auto_describe=False)
        for c in (SelfCollector(self.state), CapacityCollector(self.state, catalog),
                  QuotaCollector(self.state, catalog), SpendCollector(self.state, catalog, clock),
                  SlaCollector(self.state, store, self.targets, catalog, clock), SiteCollector(catalog)):
            self.registry.register(c)
        self.render()

    # ------------------------------------------------------------------ targets
    def targets(self) -> list[ProbeTarget]:
        with self._targets_lock:
            api = [t for op in self.operators for t in self._api_targets.get(op, [])]
        return api + list(self._dept_targets)

    def _maybe_refresh_service_catalog(self, prov: Provider) -> None:
        if self.read_service_catalog is None:
            return
        last = self._api_targets_at.get(prov.name)
        if last is not None and time.monotonic() - last < self.service_catalog_every_seconds:
            return
        try:
            found = service_targets(prov.name, self.read_service_catalog(prov))
        except Exception as exc:  # noqa: BLE001 - an operator failing must not stop the others
            log.warning("operator %s: service catalog unreadable: %s", prov.name, type(exc).__name__)
            return
        if found:
            with self._targets_lock:
                self._api_targets[prov.name] = found
            self._api_targets_at[prov.name] = time.monotonic()

    # ------------------------------------------------------------------ collection
    def refresh_operator(self, op: str) -> OperatorSnapshot:
        """Read one operator now (bounded by the global semaphore) and record the result. Never raises."""
        prov = self.providers[op]
        with self._sem:
            t0 = time.monotonic()
            try:
                snap = self.read_snapshot(prov)
            except Exception as exc:  # noqa: BLE001 - counted and reported as up=0
                snap = OperatorSnapshot(provider=op, taken_at=self.clock(), duration_seconds=time.monotonic() - t0,
                                        ok=False, error=f"{type(exc).__name__}: {exception_text(exc)}")
                log.debug("operator %s refresh raised:\n%s", op, traceback.format_exc())
            if snap.ok:
                self._maybe_refresh_service_catalog(prov)
        self.state.update(snap)
        if not snap.ok:
            log.warning("operator %s: refresh failed: %s", op, snap.error.splitlines()[0] if snap.error else "?")
        self.render()
        return snap

    def probe_round(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Probe every target once, record into the month's tallies and persist. Returns targets probed."""
        targets = self.targets()
        now = self.clock()

        def one(t: ProbeTarget):
            ok, seconds = probe_once(t, self.probe_timeout_seconds)
            maint = sla.in_maintenance(now, self.providers[t.operator].maintenance)
            self.store.record(t.key, now, ok, maint)
            self.state.set_probe(t.key, ProbeResult(ok, seconds, now.timestamp()))

        if pool is None:
            for t in targets:
                one(t)
        else:
            list(pool.map(one, targets))
        try:
            self.store.save(now)
        except OSError as exc:
            log.error("probe state file %s not written: %s", self.store.path, exc)
        self.render()
        return len(targets)

    # ------------------------------------------------------------------ rendering
    def render(self) -> bytes:
        """Render every collector once; on failure keep serving the previous page (and count it)."""
        with self._render_lock:
            try:
                page = generate_latest(self.registry)
                self._page, self._page_gzip = page, gzip.compress(page, compresslevel=5)
            except Exception:  # noqa: BLE001
                self.state.render_errors_total += 1
                log.exception("render failed; serving the previous page")
                return self._page
            if self.publish is not None:
                self.publish(self._page, self._page_gzip)
            return self._page

    def page(self) -> bytes:
        return self._page

    def page_gzip(self) -> bytes:
        """The same page gzip-compressed once per render (Prometheus asks for gzip)."""
        return self._page_gzip

    # ------------------------------------------------------------------ threads
    def _operator_loop(self, op: str) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.refresh_operator(op)
            self._stop.wait(max(0.0, self.interval_seconds - (time.monotonic() - t0)))

    def _probe_loop(self) -> None:
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe") as pool:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    self.probe_round(pool)
                except Exception:  # noqa: BLE001
                    log.exception("probe round failed")
                self._stop.wait(max(0.0, self.probe_interval_seconds - (time.monotonic() - t0)))

    def start(self) -> None:
        for op in self.operators:
            t = threading.Thread(target=self._operator_loop, args=(op,), name=f"refresh-{op}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._probe_loop, name="probes", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)


COLLECTOR_NICENESS = 10        # added to the serving process's nice value in the collector child


def _collector_main(conn, build: Callable[..., Exporter], args: tuple, log_level: int) -> None:
    """The child process of ``CollectorProcess``: build the Exporter, run it, send every page to the parent.

    Stops on SIGTERM/SIGINT, when the parent goes away (the pipe breaks, or it is no longer our
    parent), and exits 3 if the Exporter cannot be built (the error is logged, redacted)."""
    from yunshang.redact import install_log_redaction

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[collector]: %(message)s")
    install_log_redaction()
    os.nice(COLLECTOR_NICENESS)           # scrapes first: see the module's docstring
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    send_lock = threading.Lock()

    def publish(page: bytes, page_gzip: bytes) -> None:
        try:
            with send_lock:
                conn.send_bytes(page)
                conn.send_bytes(page_gzip)
        except OSError:          # the serving process is gone
            stop.set()

    try:
        exp = build(*args)
    except Exception as exc:  # noqa: BLE001 - reported by the parent as the collector's exit
        log.error("collector: cannot start: %s: %s", type(exc).__name__, exception_text(exc))
        raise SystemExit(3) from None
    exp.publish = publish
    publish(exp.page(), exp.page_gzip())
    exp.start()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    exp.stop()
    conn.close()


class CollectorProcess:
    """The Exporter in a child process (``spawn``: no state shared with the server); the latest page
    it rendered is kept here, in the serving process, and handed to every scrape.

    ``build(*args)`` (a module-level function: it is pickled by name) makes the Exporter in the
    child. ``on_exit(code)`` is called (from the receiving thread) if the child ends while we run."""

    def __init__(self, build: Callable[..., Exporter], args: tuple, on_exit: Callable[[int | None], None],
                 log_level: int = logging.WARNING):
        ctx = multiprocessing.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_collector_main, args=(send, build, args, log_level),
                                 name="yunshang-collector")
        self._send = send
        self._pages: tuple[bytes, bytes] = (b"", b"")
        self._on_exit = on_exit
        self._stopping = False
        self._thread = threading.Thread(target=self._receive, name="pages", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def start(self) -> None:
        self._proc.start()
        self._send.close()           # the child holds the only write end: EOF here when it ends
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                page = self._recv.recv_bytes()
                page_gzip = self._recv.recv_bytes()
            except (EOFError, OSError):
                break
            self._pages = (page, page_gzip)       # one reference swap: a scrape sees one whole page
        self._proc.join(15)
        if not self._stopping:
            self._on_exit(self._proc.exitcode)

    def page(self) -> bytes:
        return self._pages[0]

    def page_gzip(self) -> bytes:
        return self._pages[1]

    def wait_first_page(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._pages[0] and self._proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self._pages[0])

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping = True
        if self._proc.is_alive():
            self._proc.terminate()           # SIGTERM: the child stops its threads and exits
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        self._thread.join(5)
        self._recv.close()


def make_http_server(exporter, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server whose /metrics returns the exporter's latest page from memory (``exporter``: an
    ``Exporter`` or a ``CollectorProcess``, anything with ``page()`` and ``page_gzip()``)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            encoding = None
            if path == "/metrics":
                body, ctype, code = exporter.page(), CONTENT_TYPE_LATEST, 200
                if "gzip" in self.headers.get("Accept-Encoding", ""):
                    body, encoding = exporter.page_gzip(), "gzip"
            elif path in ("/", "/healthz"):
                body, ctype, code = b"yunshang exporter: see /metrics\n", "text/plain; charset=utf-8", 200
            else:
                body, ctype, code = b"not found\n", "text/plain; charset=utf-8", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # quiet: scrapes are frequent
            log.debug("http: " + fmt, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    return Server((host, port), Handler)


def openstack_readers(clouds_file: str | None, catalog: Catalog,
                      limits_max_age_seconds: float = 300.0) -> tuple[SnapshotReader, ServiceCatalogReader]:
    """The production data sources: the core's OpenStack adapter (imported lazily). One
    ``OperatorReader`` per operator, kept across refreshes (its connection, its limits cache)."""
    from yunshang.openstack import connect
    from yunshang.openstack.capacity import OperatorReader

    names = tuple(d.name for d in catalog.departments)
    readers: dict[str, OperatorReader] = {}
    lock = threading.Lock()

    def read_snapshot(prov: Provider) -> OperatorSnapshot:
        with lock:
            reader = readers.get(prov.name)
            if reader is None:
                reader = readers[prov.name] = OperatorReader(prov, clouds_file, departments=names,
                                                             limits_max_age_seconds=limits_max_age_seconds)
        return reader.read()

    def read_catalog(prov: Provider) -> list:
        conn = connect(prov.cloud, clouds_file)
        try:
            return list(conn.service_catalog)
        finally:
            conn.close()

    return read_snapshot, read_catalog
