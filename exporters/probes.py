"""Synthetic probes (adapter): HTTP and TCP checks of operator APIs and departments' published services.

The SLA math lives in ``yunshang.sla``; this module only performs I/O and builds the target list.
Targets never carry credentials into labels: a probe is named (``probe`` label), its URL is not exported.
"""
from __future__ import annotations

import datetime as dt
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable

from yunshang.errors import InputInvalid
from yunshang.model import Catalog, Department, Provider
from yunshang.yamlload import load_yaml


@dataclass(frozen=True)
class ProbeTarget:
    """One thing to probe, and whom its result counts for.

    ``department``/``contract`` are "" for an operator API probe (it counts against every contract
    held with that operator). ``max_ok_status``: highest HTTP status that still means "up"
    (an API answering 401 to an anonymous GET is up; a published service must answer < 400).
    """

    operator: str
    name: str
    kind: str                    # http | tcp
    target: str                  # URL or host:port (never exported)
    department: str = ""
    contract: str = ""
    max_ok_status: int = 399

    @property
    def key(self) -> str:
        """Stable id in the probe state file."""
        return f"{self.operator}|{self.department}|{self.name}"


def probe_once(target: ProbeTarget, timeout_seconds: float = 5.0) -> tuple[bool, float]:
    """Run one probe; returns (ok, duration_seconds). Never raises for a failing target."""
    t0 = time.monotonic()
    try:
        if target.kind == "tcp":
            host, _, port = target.target.rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds):
                ok = True
        else:
            req = urllib.request.Request(target.target, method="GET", headers={"User-Agent": "yunshang-exporter"})
            try:
                with urllib.request.urlopen(req, timeout=timeout_seconds) as resp:
                    resp.read(65536)
                    ok = resp.status <= target.max_ok_status
            except urllib.error.HTTPError as exc:      # a status code is an answer
                ok = exc.code <= target.max_ok_status
    except (OSError, ValueError, urllib.error.URLError):
        ok = False
    return ok, time.monotonic() - t0


def _strip_userinfo(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    if p.username or p.password:
        p = p._replace(netloc=(p.hostname or "") + (f":{p.port}" if p.port else ""))
    return urllib.parse.urlunsplit(p)


_TEMPLATED = re.compile(r"/[^/]*(%\(|\$\()[^/]*")


def api_root(url: str) -> str:
    """An endpoint URL without templated project parts (``/v2.1/%(tenant_id)s`` -> ``/v2.1``)."""
    return _strip_userinfo(_TEMPLATED.sub("", url))


def service_targets(operator: str, service_catalog: Iterable[dict]) -> list[ProbeTarget]:
    """Probe targets from a Keystone service catalog (``[{type, endpoints: [{interface, url}]}]``)."""
    out: dict[str, ProbeTarget] = {}
    for svc in service_catalog:
        stype = svc.get("type") or svc.get("name") or "unknown"
        for ep in svc.get("endpoints", ()):
            if ep.get("interface", "public") != "public" or not ep.get("url"):
                continue
            name = f"api-{stype}"
            out.setdefault(name, ProbeTarget(operator, name, "http", api_root(ep["url"]), max_ok_status=499))
    return [out[k] for k in sorted(out)]


def identity_target(provider: Provider, clouds_file: str | None) -> ProbeTarget | None:
    """The operator's Keystone, read from clouds.yaml: probed even while the catalog cannot be read."""
    if not clouds_file:
        return None
    try:
        doc = load_yaml(clouds_file) or {}
        url = doc["clouds"][provider.cloud]["auth"]["auth_url"]
    except (InputInvalid, KeyError, TypeError):
        return None
    return ProbeTarget(provider.name, "api-identity", "http", api_root(url), max_ok_status=499)


def primary_contract(dept: Department, today: dt.date) -> str:
    """The contract a probe without ``contract:`` counts against: a primary valid today, else any valid one."""
    valid = [c for c in dept.contracts if c.valid_on(today)]
    for c in valid:
        if c.role == "primary":
            return c.id
    return valid[0].id if valid else ""


def department_targets(catalog: Catalog, operators: Iterable[str] | None = None,
                       today: dt.date | None = None) -> list[ProbeTarget]:
    """Each department's published services (catalog ``probes:``), tied to the contract they count against."""
    wanted = set(operators) if operators is not None else None
    today = today or dt.datetime.now(dt.timezone.utc).date()
    out = []
    for d in catalog.departments:
        for p in d.probes:
            cid = p.contract or primary_contract(d, today)
            try:
                op = d.contract(cid).provider
            except KeyError:
                continue
            if wanted is not None and op not in wanted:
                continue
            out.append(ProbeTarget(op, p.name, p.kind, p.target, department=d.name, contract=cid))
    return out


CatalogReader = Callable[[Provider], list[dict]]
