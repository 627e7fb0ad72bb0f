"""Departmental server survey: read a CSV or YAML file, validate every row, return frozen hosts.

Every bad row is reported at once with its row number (CSV: the line in the
file, header = line 1; YAML: the line where the host's mapping starts) and the
field, in one :class:`yunshang.errors.SurveyInvalid`.

YAML shape::

    hosts:
      - hostname: psb-web-01
        address: 10.20.1.11
        ssh_user: root              # default root
        ssh_port: 22                # default 22
        os: debian12
        vcpu: 2
        ram_gb: 4
        disk_gb: 40
        data_paths: [/srv/app/data]
        disk_image: /srv/images/root.raw   # optional: the host's disk image file
        services:
          - {name: web, port: 80, check: "http /health"}
        business_system: hukou
        depends_on: [psb-db-01]
        maintenance_window: "sat,sun 22:00-06:00"
        department: public-security
        operator: telecom           # optional; else the department's primary contract

CSV: the same column names; list columns separated by ``;``; services as
``name:port:check`` items (``web:80:http /health;ssh:22:tcp``).

Health checks: ``tcp`` (the port accepts connections), ``http <path>`` (HTTP
GET answers < 500), ``cmd <shell command>`` (exit status 0, run on the host).
"""
from __future__ import annotations

import csv
import io
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

from yunshang.errors import InputInvalid, Problem, SurveyInvalid
from yunshang.migration.windows import WeeklyWindow, parse_window
from yunshang.yamlload import decode_text, parse_yaml, read_bytes

FIELDS = (
    "hostname", "address", "ssh_user", "ssh_port", "os", "vcpu", "ram_gb", "disk_gb",
    "data_paths", "disk_image", "services", "business_system", "depends_on",
    "maintenance_window", "department", "operator",
)
REQUIRED = ("hostname", "address", "os", "vcpu", "ram_gb", "disk_gb", "business_system", "department")

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    check: str                   # "tcp" | "http <path>" | "cmd <command>"

    @property
    def check_kind(self) -> str:
        return self.check.split(" ", 1)[0]

    @property
    def check_arg(self) -> str:
        parts = self.check.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True)
class SurveyHost:
    hostname: str
    address: str
    ssh_user: str
    ssh_port: int
    os: str
    vcpu: int
    ram_gb: float
    disk_gb: int
    data_paths: tuple[str, ...]
    services: tuple[Service, ...]
    business_system: str
    depends_on: tuple[str, ...]
    maintenance_window: str
    department: str
    operator: str = ""
    disk_image: str = ""
    row: int = 0                 # where it came from, for later error messages

    @property
    def window(self) -> WeeklyWindow:
        return parse_window(self.maintenance_window)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname, "address": self.address, "ssh_user": self.ssh_user,
            "ssh_port": self.ssh_port, "os": self.os, "vcpu": self.vcpu, "ram_gb": self.ram_gb,
            "disk_gb": self.disk_gb, "data_paths": list(self.data_paths), "disk_image": self.disk_image,
            "services": [{"name": s.name, "port": s.port, "check": s.check} for s in self.services],
            "business_system": self.business_system, "depends_on": list(self.depends_on),
            "maintenance_window": self.maintenance_window, "department": self.department,
            "operator": self.operator,
        }


@dataclass(frozen=True)
class Survey:
    file: str
    hosts: tuple[SurveyHost, ...]

    def host(self, hostname: str) -> SurveyHost:
        for h in self.hosts:
            if h.hostname == hostname:
                return h
        raise KeyError(hostname)


# --------------------------------------------------------------------------- reading
def load_survey(path: str) -> Survey:
    """Read and validate a survey file (``.csv``, ``.yaml`` or ``.yml``)."""
    try:
        text = decode_text(read_bytes(path, what="survey file"), path)
    except InputInvalid as exc:
        raise SurveyInvalid(exc.problems) from None
    return parse_survey(text, path)


def parse_survey(text: str, file: str) -> Survey:
    """Parse survey text; the format follows the file name (``.csv`` else YAML)."""
    if file.lower().endswith(".csv"):
        rows = _csv_rows(text, file)
    else:
        rows = _yaml_rows(text, file)
    return validate_rows(rows, file)


def survey_from_dicts(hosts: list[dict[str, Any]], file: str = "<plan>") -> Survey:
    """Rebuild a survey from ``SurveyHost.to_dict`` records (e.g. stored in a plan file)."""
    return validate_rows([(i + 1, dict(h)) for i, h in enumerate(hosts)], file)


def _csv_rows(text: str, file: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))    # the csv module's own newline handling (\r, \r\n)
    rows: list[tuple[int, dict[str, Any]]] = []
    header: list[str] | None = None
    problems: list[Problem] = []
    records = iter(reader)
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except csv.Error as exc:       # NUL bytes, a field over the csv module's limit, ...
            raise SurveyInvalid([Problem(file, "", f"not valid CSV: {exc}", reader.line_num + 1)]) from None
        line = reader.line_num
        if not record or all(not c.strip() for c in record) or record[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip() for c in record]
            for col in header:
                if col not in FIELDS:
                    problems.append(Problem(file, col or "<empty>", f"unknown column; expected one of {', '.join(FIELDS)}", line))
            continue
        if len(record) != len(header):
            problems.append(Problem(file, "", f"row has {len(record)} cells, header has {len(header)}", line))
            continue
        raw: dict[str, Any] = {k: v.strip() for k, v in zip(header, record, strict=True) if k in FIELDS}
        for key in ("data_paths", "depends_on"):
            if key in raw:
                raw[key] = [p.strip() for p in raw[key].split(";") if p.strip()]
        if "services" in raw:
            raw["services"] = [_csv_service(s.strip()) for s in raw["services"].split(";") if s.strip()]
        rows.append((line, {k: v for k, v in raw.items() if v != ""}))
    if header is None:
        problems.append(Problem(file, "", "empty survey: expected a header row and one row per host"))
    if problems:
        raise SurveyInvalid(problems)
    return rows


def _csv_service(item: str) -> Any:
    parts = item.split(":", 2)
    if len(parts) < 2:
        return item  # reported by validation as malformed
    return {"name": parts[0].strip(), "port": parts[1].strip(), "check": parts[2].strip() if len(parts) > 2 else "tcp"}


def _yaml_rows(text: str, file: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = parse_yaml(text, file)
    except InputInvalid as exc:
        raise SurveyInvalid(exc.problems) from None
    data = doc.value
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise SurveyInvalid([Problem(file, "hosts", "expected a top-level mapping with a `hosts:` list")])
    rows: list[tuple[int, dict[str, Any]]] = []
    problems = []
    for i, item in enumerate(data["hosts"]):
        line = doc.line(("hosts", i)) or i + 1      # always known for a parsed item; else its position, as from_hosts
        if not isinstance(item, dict):
            problems.append(Problem(file, "", "expected a mapping (one host)", line))
            continue
        for key in item:
            if key not in FIELDS:
                problems.append(Problem(file, str(key), f"unknown field; expected one of {', '.join(FIELDS)}", line))
        rows.append((line, {k: v for k, v in item.items() if k in FIELDS and v is not None}))
    if problems:
        raise SurveyInvalid(problems)
    return rows


# --------------------------------------------------------------------------- validation
def validate_rows(rows: list[tuple[int, dict[str, Any]]], file: str) -> Survey:
    problems: list[Problem] = []
    hosts: list[SurveyHost] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        host = _validate_row(raw, file, line, problems)
        if host is None:
            continue
        if host.hostname in seen:
            problems.append(Problem(file, "hostname",
                                    f"duplicate hostname {host.hostname!r} (first at row {seen[host.hostname]})", line))
            continue
        seen[host.hostname] = line
        hosts.append(host)
    names = set(seen)
    for h in hosts:
        for dep in h.depends_on:
            if dep == h.hostname:
                problems.append(Problem(file, "depends_on", f"{h.hostname} depends on itself", h.row))
            elif dep not in names:
                problems.append(Problem(file, "depends_on", f"unknown host {dep!r}: expected a hostname from this survey", h.row))
    if not rows:
        problems.append(Problem(file, "hosts", "no hosts: expected at least one"))
    if problems:
        raise SurveyInvalid(sorted(problems, key=lambda p: (p.line or 0, p.field)))
    return Survey(file=file, hosts=tuple(hosts))


def _validate_row(raw: dict[str, Any], file: str, line: int, problems: list[Problem]) -> SurveyHost | None:
    before = len(problems)

    def bad(field: str, message: str) -> None:
        problems.append(Problem(file, field, message, line))

    for f in REQUIRED:
        if f not in raw or raw[f] in ("", [], None):
            bad(f, "required")
    hostname = str(raw.get("hostname", ""))
    if hostname and not _HOSTNAME.match(hostname):
        bad("hostname", f"{hostname!r}: expected lowercase letters, digits and '-' (max 63)")
    address = str(raw.get("address", ""))
    if address and not _is_address(address):
        bad("address", f"{address!r}: expected an IP address or DNS name")
    ssh_user = str(raw.get("ssh_user", "root"))
    if not _USER.match(ssh_user):
        bad("ssh_user", f"{ssh_user!r}: expected a POSIX user name")
    ssh_port = _int(raw.get("ssh_port", 22), "ssh_port", 1, 65535, bad)
    os_name = str(raw.get("os", ""))
    vcpu = _int(raw.get("vcpu"), "vcpu", 1, 1024, bad) if "vcpu" in raw else 0
    ram_gb = _num(raw.get("ram_gb"), "ram_gb", bad) if "ram_gb" in raw else 0.0
    disk_gb = _int(raw.get("disk_gb"), "disk_gb", 1, 1_000_000, bad) if "disk_gb" in raw else 0
    data_paths = _list(raw.get("data_paths", []), "data_paths", bad)
    for p in data_paths:
        if not _is_safe_abs_path(p):
            bad("data_paths", f"{p!r}: expected an absolute path without '..'")
    disk_image = str(raw.get("disk_image", ""))
    if disk_image and not _is_safe_abs_path(disk_image):
        bad("disk_image", f"{disk_image!r}: expected an absolute path without '..'")
    services = _services(raw.get("services", []), bad)
    depends_on = tuple(str(d) for d in _list(raw.get("depends_on", []), "depends_on", bad))
    window = str(raw.get("maintenance_window", "any"))
    try:
        parse_window(window)
    except ValueError as exc:
        bad("maintenance_window", str(exc))
    department = str(raw.get("department", ""))
    if department and not _SLUG.match(department):
        bad("department", f"{department!r}: expected a department name (lowercase, digits, '-')")
    operator = str(raw.get("operator", ""))
    if operator and not _SLUG.match(operator):
        bad("operator", f"{operator!r}: expected an operator name (lowercase, digits, '-')")
    business_system = str(raw.get("business_system", ""))
    if len(problems) > before:
        return None
    return SurveyHost(
        hostname=hostname, address=address, ssh_user=ssh_user, ssh_port=ssh_port, os=os_name,
        vcpu=vcpu, ram_gb=ram_gb, disk_gb=disk_gb, data_paths=tuple(str(p) for p in data_paths),
        services=services, business_system=business_system, depends_on=depends_on,
        maintenance_window=window, department=department, operator=operator, disk_image=disk_image, row=line,
    )


def _is_address(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return bool(_DNS.match(s)) and not re.match(r"^[0-9.]+$", s)


def _is_safe_abs_path(p: Any) -> bool:
    return isinstance(p, str) and p.startswith("/") and ".." not in p.split("/") and "\n" not in p and "\x00" not in p


def _int(v: Any, field: str, lo: int, hi: int, bad) -> int:
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        n = int(str(v).strip()) if not isinstance(v, (int, float)) else int(v)
    except (TypeError, ValueError):
        bad(field, f"{v!r}: expected a whole number")
        return 0
    if not lo <= n <= hi:
        bad(field, f"{n}: expected {lo}..{hi}")
    return n


def _num(v: Any, field: str, bad) -> float:
    try:
        if isinstance(v, bool):
            raise ValueError
        x = float(v)
    except (TypeError, ValueError):
        bad(field, f"{v!r}: expected a number")
        return 0.0
    if not x > 0:
        bad(field, f"{x}: expected > 0")
    return x


def _list(v: Any, field: str, bad) -> list:
    if isinstance(v, str):
        return [v] if v else []
    if not isinstance(v, list):
        bad(field, f"expected a list, got {type(v).__name__}")
        return []
    return v


def _services(v: Any, bad) -> tuple[Service, ...]:
    out = []
    for item in _list(v, "services", bad):
        if not isinstance(item, dict) or "name" not in item or "port" not in item:
            bad("services", f"{item!r}: expected name, port and check (CSV: name:port:check)")
            continue
        name = str(item["name"])
        if not _SERVICE_NAME.match(name):
            bad("services", f"{name!r}: expected a service name (letters, digits, '.', '_', '-')")
        port = _int(item["port"], f"services.{name}.port", 1, 65535, bad)
        check = " ".join(str(item.get("check", "tcp")).split())
        kind = check.split(" ", 1)[0]
        if kind not in ("tcp", "http", "cmd") or (kind == "tcp" and check != "tcp") or (
                kind in ("http", "cmd") and len(check.split(" ", 1)) < 2) or (
                kind == "http" and not check.split(" ", 1)[1].startswith("/")):
            bad(f"services.{name}.check", f"{check!r}: expected 'tcp', 'http /path' or 'cmd <command>'")
        out.append(Service(name=name, port=port, check=check))
    return tuple(out)


def relpath_for(path: str) -> str:
    """Where a source path lands under a host's staging directory (no leading '/')."""
    return os.path.normpath(path).lstrip("/")
