"""Read and validate a catalog directory into ``yunshang.model.Catalog``.

A catalog is a directory::

    providers.yaml          the qualified operators (one procurement)
    departments/<name>.yaml each department: its signed contracts, requests, users, probes
    templates/<name>.yaml   the templates requests are built from

``load_catalog`` reads everything, gathers EVERY problem it finds (YAML syntax
with line numbers, missing/unknown/mistyped fields, bad names, duplicates,
dangling references, impossible values, Jinja2 syntax in ``user_data``) and
raises one ``CatalogInvalid`` listing them all, each naming the file, the field
path (``providers[0].zones[1].overcommit.vcpu``), what was expected, and the
line. It never writes anything.
"""
from __future__ import annotations

import datetime as dt
import difflib
import gc
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from yunshang import sites as sites_mod
from yunshang.errors import CatalogInvalid, InputInvalid, Problem
from yunshang.model import (
    DEFAULT_MIGRATION_HASH, DEPARTMENT_ROLES, MIGRATION_HASH_ALGORITHMS, PERSON_ROLES, ApprovalPolicy, Catalog,
    Contract, Department,
    MaintenanceWindow, Overcommit, Person, Prices, Probe, Provider, ProviderSla, Request, RequestDocument, Rule,
    SlaCredit, Size, Template, User, VolumeSpec, Zone, frozen_mapping,
)
from yunshang.yamlload import YamlDoc, decode_text, parse_yaml, read_bytes, yaml_files

NAME_RE = re.compile(r"[a-z0-9-]+")             # whole string (fullmatch): "db\n" is not a name
NAME_MAX = 63
CONTRACT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROLES = ("primary", "backup")
# Sane bounds: far above any real prefecture, low enough that sums and products stay exact and finite.
MAX_CNY = 1e10                   # prices, ceilings (CNY per month)
MAX_OVERCOMMIT = 64.0
MAX_PHYSICAL = 10_000_000        # a zone's vCPUs / GB of RAM / GB of disk
MAX_SIZE = 1_000_000             # a flavor's vCPUs / GB of RAM / GB of disk
MAX_COUNT = 10_000               # instances of one request; floating IPs, volumes of a template
MAX_MINUTES = 525_600            # a year
MAX_ITEMS = 100_000              # entries of any one list
DATE_MIN, DATE_MAX = dt.date(2000, 1, 1), dt.date(2099, 12, 31)   # contracts, maintenance windows
PROTOCOLS = ("tcp", "udp", "icmp", "any")
PROBE_KINDS = ("http", "tcp")
_BAD = object()          # a value that failed its check (the problem is already recorded)
_MISSING = object()      # an optional field that is absent


# --------------------------------------------------------------------------- YAML with line numbers
class _Doc:
    """One parsed file (through the one safe loader, ``yunshang.yamlload``): where its fields are."""

    def __init__(self, file: str, problems: list[Problem], ydoc: YamlDoc | None = None):
        self.file = file
        self.problems = problems
        self.ydoc = ydoc

    def line(self, path: tuple) -> int | None:
        return self.ydoc.line(tuple(path)) if self.ydoc is not None else None

    def err(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.file, fmt_path(path), message, self.line(path)))


def fmt_path(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _read_yaml(path: Path, problems: list[Problem]) -> tuple[Any, _Doc | None, str]:
    """Parse one YAML file; on failure record the problem and return (_BAD, None, text)."""
    file = str(path)
    try:
        text = decode_text(read_bytes(file), file)
        ydoc = parse_yaml(text, file)
    except InputInvalid as exc:
        problems.extend(exc.problems)
        return _BAD, None, ""
    return ydoc.value, _Doc(file, problems, ydoc), text


# --------------------------------------------------------------------------- field checkers
Checker = Callable[[_Doc, tuple, Any], Any]


def _typename(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list",
            dict: "a mapping", dt.date: "a date", dt.datetime: "a date-time"}.get(type(v), type(v).__name__)


def c_name(doc: _Doc, path: tuple, v: Any) -> Any:
    if not isinstance(v, str) or not NAME_RE.fullmatch(v) or len(v) > NAME_MAX:
        doc.err(path, f"expected a name of lowercase letters, digits and '-' (at most {NAME_MAX}), got {_show(v)}")
        return _BAD
    return v


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_MAX = 1000


def _show(v: Any) -> str:
    """A value as shown in a message: repr, cut to 60 characters (a hostile value may be 4 MiB)."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def c_text(doc: _Doc, path: tuple, v: Any) -> Any:
    """Non-empty single-line text (no newlines or other control characters), at most TEXT_MAX."""
    if not isinstance(v, str) or not v.strip():
        doc.err(path, f"expected non-empty text, got {_typename(v) if not isinstance(v, str) else 'empty text'}")
        return _BAD
    if _CONTROL.search(v) or len(v) > TEXT_MAX:
        doc.err(path, f"expected one line of text (no control characters, at most {TEXT_MAX}), got {_show(v)}")
        return _BAD
    return v


def c_any_text(doc: _Doc, path: tuple, v: Any) -> Any:
    if not isinstance(v, str):
        doc.err(path, f"expected text, got {_typename(v)}")
        return _BAD
    return v


def c_bool(doc: _Doc, path: tuple, v: Any) -> Any:
    if not isinstance(v, bool):
        doc.err(path, f"expected true or false, got {_show(v)}")
        return _BAD
    return v


def c_int(lo: int | None = None, hi: int | None = None, what: str = "") -> Checker:
    rng = _range_text(lo, hi)

    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            doc.err(path, f"expected an integer{rng}{what}, got {_typename(v)} {_show(v)}")
            return _BAD
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            doc.err(path, f"expected an integer{rng}{what}, got {v}")
            return _BAD
        return v
    return check


def c_num(lo: float | None = None, hi: float | None = None, lo_open: bool = False, what: str = "") -> Checker:
    if lo_open:
        rng = f" in ({lo:g}, {hi:g}]" if hi is not None else f" greater than {lo:g}"
    else:
        rng = _range_text(lo, hi)

    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            doc.err(path, f"expected a number{rng}{what}, got {_typename(v)} {_show(v)}")
            return _BAD
        bad = (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
               or (hi is not None and v > hi))
        if bad:
            doc.err(path, f"expected a number{rng}{what}, got {v:g}")
            return _BAD
        return float(v)
    return check


def _num_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1_000_000 else f"{x:g}"


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {_num_text(lo)} to {_num_text(hi)}"
    if lo is not None:
        return f" >= {_num_text(lo)}"
    if hi is not None:
        return f" <= {_num_text(hi)}"
    return ""


def c_choice(*choices: str) -> Checker:
    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if v not in choices:
            doc.err(path, f"expected one of {' | '.join(choices)}, got {_show(v)}")
            return _BAD
        return v
    return check


def c_date(doc: _Doc, path: tuple, v: Any) -> Any:
    if isinstance(v, dt.datetime):
        doc.err(path, f"expected a date YYYY-MM-DD (no time), got {v.isoformat()}")
        return _BAD
    value = v if isinstance(v, dt.date) else None
    if isinstance(v, str):
        try:
            value = dt.date.fromisoformat(v)
        except ValueError:
            pass
    if value is None:
        doc.err(path, f"expected a date YYYY-MM-DD, got {_show(v)}")
        return _BAD
    if not DATE_MIN <= value <= DATE_MAX:
        doc.err(path, f"expected a date from {DATE_MIN} to {DATE_MAX}, got {value}")
        return _BAD
    return value


def c_datetime(doc: _Doc, path: tuple, v: Any) -> Any:
    value = v
    if isinstance(v, str):
        try:
            value = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, dt.datetime):
        doc.err(path, f"expected a UTC date-time like 2026-11-14T16:00:00Z, got {_show(v)}")
        return _BAD
    if not DATE_MIN <= value.date() <= DATE_MAX:
        doc.err(path, f"expected a date-time from {DATE_MIN} to {DATE_MAX}, got {value.isoformat()}")
        return _BAD
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def c_cidr(doc: _Doc, path: tuple, v: Any) -> Any:
    if isinstance(v, str):
        try:
            return str(ipaddress.ip_network(v, strict=True))
        except ValueError as exc:
            doc.err(path, f"expected a network in CIDR form like 10.0.0.0/8, got {_show(v)} ({exc})")
            return _BAD
    doc.err(path, f"expected a network in CIDR form like 10.0.0.0/8, got {_typename(v)}")
    return _BAD


def c_contract_id(doc: _Doc, path: tuple, v: Any) -> Any:
    if not isinstance(v, str) or not CONTRACT_ID_RE.fullmatch(v):
        doc.err(path, f"expected a contract id of letters, digits, '.', '_' and '-' (e.g. GA-2026-01), got {_show(v)}")
        return _BAD
    return v


def c_list(item: Checker) -> Checker:
    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if v is None:
            return []
        if not isinstance(v, list):
            doc.err(path, f"expected a list, got {_typename(v)}")
            return _BAD
        if len(v) > MAX_ITEMS:
            doc.err(path, f"expected at most {MAX_ITEMS:,} entries, got {len(v):,}")
            return _BAD
        return [item(doc, path + (i,), x) for i, x in enumerate(v)]
    return check


def c_map_of(item: Checker, key: Checker = c_name) -> Checker:
    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if not isinstance(v, dict):
            doc.err(path, f"expected a mapping, got {_typename(v)}")
            return _BAD
        out = {}
        for k, x in v.items():
            kk = key(doc, path + (k,), k)
            val = item(doc, path + (k,), x)
            if kk is not _BAD:
                out[kk] = val
        return out
    return check


def c_record(required: dict[str, Checker], optional: dict[str, Checker] | None = None,
             build: Callable[[_Doc, tuple, dict], Any] | None = None) -> Checker:
    """A mapping with known fields. Missing required and unknown fields are problems;
    ``build`` turns the checked fields into a model object (only when none is _BAD)."""
    optional = optional or {}
    known = list(required) + list(optional)
    known_set = frozenset(known)

    def check(doc: _Doc, path: tuple, v: Any) -> Any:
        if v is _BAD:
            return _BAD
        if not isinstance(v, dict):
            doc.err(path, f"expected a mapping with {', '.join(required) or 'fields'}, got {_typename(v)}")
            return _BAD
        out: dict[str, Any] = {}
        ok = True
        for k in v:
            if k not in known_set:
                close = difflib.get_close_matches(str(k), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f"; known fields: {', '.join(known)}"
                doc.err(path + (k,), f"unknown field '{k}'{hint}")
                ok = False
        for k, chk in required.items():
            if k not in v:
                doc.err(path, f"missing required field '{k}'")
                ok = False
                continue
            out[k] = chk(doc, path + (k,), v[k])
        for k, chk in optional.items():
            out[k] = chk(doc, path + (k,), v[k]) if k in v else _MISSING
        if not ok or any(_has_bad(x) for x in out.values()):
            return _BAD
        return build(doc, path, out) if build else out
    return check


def _has_bad(x: Any) -> bool:
    if x is _BAD:
        return True
    t = type(x)
    if t is list:
        return any(i is _BAD or (type(i) in _CONTAINERS and _has_bad(i)) for i in x)
    if t is dict:
        return any(i is _BAD or (type(i) in _CONTAINERS and _has_bad(i)) for i in x.values())
    return False


_CONTAINERS = (list, dict)       # frozen mappings (model values) are never searched


def _list_at(raw: Any, key: str) -> list:
    """``raw[key]`` when ``raw`` is a mapping and that is a list, else [] (for cross-checks on raw input)."""
    v = raw.get(key) if isinstance(raw, dict) else None
    return v if isinstance(v, list) else []


def _opt(out: dict, key: str, default: Any) -> Any:
    v = out[key]
    return default if v is _MISSING else v


def _unique(doc: _Doc, path: tuple, items: list, key: Callable[[Any], str], what: str) -> None:
    seen: dict[str, int] = {}
    for i, it in enumerate(items):
        if it is _BAD:
            continue
        k = key(it)
        if k in seen:
            doc.err(path + (i,), f"duplicate {what} '{k}' (also at {fmt_path(path + (seen[k],))})")
        else:
            seen[k] = i


# --------------------------------------------------------------------------- providers.yaml
def _build_overcommit(doc, path, o):
    return Overcommit(**{k: _opt(o, k, 1.0) for k in ("vcpu", "ram_gb", "disk_gb")})


_overcommit = c_record({}, {k: c_num(1.0, MAX_OVERCOMMIT, what=" (overcommit below 1 would waste physical capacity)")
                            for k in ("vcpu", "ram_gb", "disk_gb")}, _build_overcommit)


def _build_zone(doc, path, z):
    return Zone(name=z["name"], vcpu=z["vcpu"], ram_gb=z["ram_gb"], disk_gb=z["disk_gb"],
                overcommit=_opt(z, "overcommit", Overcommit()), site=_opt(z, "site", ""))


_zone = c_record({"name": c_name, "vcpu": c_int(0, MAX_PHYSICAL, what=" (physical vCPUs)"),
                  "ram_gb": c_int(0, MAX_PHYSICAL, what=" (physical RAM, GB)"),
                  "disk_gb": c_int(0, MAX_PHYSICAL, what=" (physical disk, GB)")},
                 {"overcommit": _overcommit, "site": c_name}, _build_zone)

_sla = c_record({"availability": c_num(0.0, 1.0, lo_open=True), "rto_minutes": c_int(0, MAX_MINUTES),
                 "rpo_minutes": c_int(0, MAX_MINUTES)},
                build=lambda doc, path, s: ProviderSla(**s))
_prices = c_record({k: c_num(0.0, MAX_CNY, what=" CNY per month") for k in ("vcpu", "ram_gb", "disk_gb", "floating_ip")},
                   build=lambda doc, path, p: Prices(**p))


def _build_maintenance(doc, path, m):
    if m["end"] <= m["start"]:
        doc.err(path + ("end",), f"expected end after start ({m['start'].isoformat()}), got {m['end'].isoformat()}")
        return _BAD
    return MaintenanceWindow(start=m["start"], end=m["end"], reason=_opt(m, "reason", ""))


_maintenance = c_record({"start": c_datetime, "end": c_datetime}, {"reason": c_any_text}, _build_maintenance)


def _build_provider(doc, path, p):
    zones = p["zones"]
    if not zones:
        doc.err(path + ("zones",), "expected at least one zone")
        return _BAD
    _unique(doc, path + ("zones",), zones, lambda z: z.name, "zone name")
    return Provider(name=p["name"], cloud=p["cloud"], dedicated=p["dedicated"], mlps_level=p["mlps_level"],
                    sla=p["sla"], prices=p["prices"], zones=tuple(zones),
                    external_network=_opt(p, "external_network", "public"),
                    volume_encryption=_opt(p, "volume_encryption", False),
                    maintenance=tuple(_opt(p, "maintenance", [])))


_provider = c_record(
    {"name": c_name, "cloud": c_text, "dedicated": c_bool, "mlps_level": c_int(1, 4, " (MLPS level)"),
     "sla": _sla, "prices": _prices, "zones": c_list(_zone)},
    {"external_network": c_text, "volume_encryption": c_bool, "maintenance": c_list(_maintenance)},
    _build_provider)

_providers_file = c_record({"providers": c_list(_provider)})


# --------------------------------------------------------------------------- departments/*.yaml
_credit = c_record({"below": c_num(0.0, 1.0, lo_open=True), "credit_ratio": c_num(0.0, 1.0)},
                   build=lambda doc, path, c: SlaCredit(**c))


def _build_contract(doc, path, c):
    if c["end"] < c["start"]:
        doc.err(path + ("end",), f"expected end on or after start ({c['start']}), got {c['end']} (end before start)")
        return _BAD
    return Contract(id=c["id"], provider=c["provider"], role=c["role"], start=c["start"], end=c["end"],
                    ceiling_cny_per_month=c["ceiling_cny_per_month"],
                    sla_credits=tuple(_opt(c, "sla_credits", [])))


_contract = c_record(
    {"id": c_contract_id, "provider": c_name, "role": c_choice(*ROLES), "start": c_date, "end": c_date,
     "ceiling_cny_per_month": c_num(0.0, MAX_CNY, what=" CNY per month")},
    {"sla_credits": c_list(_credit)}, _build_contract)

_request = c_record(
    {"name": c_name, "template": c_name, "size": c_name, "count": c_int(1, MAX_COUNT, what=" (instances)")},
    {"mlps_level": c_int(1, 4, " (MLPS level)"), "ha": c_bool, "dr": c_bool, "secret": c_bool})


def _build_user(doc, path, u):
    email = _opt(u, "email", "")
    if email and not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{1,63}", email):
        doc.err(path + ("email",), f"expected an e-mail address like name@example.cn, got {_show(email)}")
        return _BAD
    return User(name=u["name"], role=_opt(u, "role", "member"), email=email)


_user = c_record({"name": c_text}, {"role": c_text, "email": c_any_text}, _build_user)


def _build_probe(doc, path, p):
    target = p["target"]
    if p["kind"] == "http" and not re.match(r"https?://[^\s/]+(/\S*)?\Z", target):
        doc.err(path + ("target",), f"expected an http(s):// URL for kind http, got {target!r}")
        return _BAD
    if p["kind"] == "tcp":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            doc.err(path + ("target",), f"expected host:port (port 1-65535) for kind tcp, got {target!r}")
            return _BAD
    return Probe(name=p["name"], kind=p["kind"], target=target, contract=_opt(p, "contract", ""))


_probe = c_record({"name": c_name, "kind": c_choice(*PROBE_KINDS), "target": c_text},
                  {"contract": c_contract_id}, _build_probe)

def _build_request(r: dict, department_level: int) -> Request:
    """A checked request entry -> Request (``mlps_level`` defaults to the department's level)."""
    return Request(name=r["name"], template=r["template"], size=r["size"], count=r["count"],
                   mlps_level=_opt(r, "mlps_level", department_level), ha=_opt(r, "ha", False),
                   dr=_opt(r, "dr", False), secret=_opt(r, "secret", False))


# The request document (``request submit FILE``, the API's POST /requests): the catalog's own
# request entries plus the department's name, a title, a contact and probes. The one schema.
_request_document = c_record({"department": c_name, "requests": c_list(_request)},
                             {"title": c_any_text, "contact": c_any_text, "probes": c_list(_probe)})


def request_document(raw: Any, file: str, department_level: Callable[[str], int | None] | None = None,
                     _doc: _Doc | None = None) -> RequestDocument:
    """Check a parsed request document; raise InputInvalid with every problem at once.

    ``department_level(name)`` gives the department's MLPS level, the default of entries that
    name none (None: the department is unknown, and such entries are a problem).
    """
    from yunshang.errors import InputInvalid

    problems: list[Problem] = _doc.problems if _doc is not None else []
    doc = _doc or _Doc(file, problems)
    if raw is None:
        doc.err((), "empty; expected a mapping with department and requests")
        raise InputInvalid(problems)
    checked = _request_document(doc, (), raw)
    entries = raw.get("requests") if isinstance(raw, dict) else None
    if isinstance(entries, list):
        if not entries:
            doc.err(("requests",), "expected a non-empty list of request entries")
        _dups(doc, ("requests",), [(i, e.get("name")) for i, e in enumerate(entries) if isinstance(e, dict)],
              "request name")
    if problems or checked is _BAD:
        raise InputInvalid(problems)
    level = department_level(checked["department"]) if department_level else None
    reqs = []
    for i, r in enumerate(checked["requests"]):
        if level is None and r["mlps_level"] is _MISSING:
            doc.err(("requests", i, "mlps_level"), f"missing, and the level of department "
                                                   f"'{checked['department']}' (its default) is not known")
            continue
        reqs.append(_build_request(r, level if level is not None else 0))
    if problems:
        raise InputInvalid(problems)
    return RequestDocument(department=checked["department"], title=_opt(checked, "title", ""),
                           requests=tuple(reqs), probes=tuple(_opt(checked, "probes", [])),
                           contact=_opt(checked, "contact", ""))


def read_request_document(path: str | Path, department_level: Callable[[str], int | None] | None = None
                          ) -> RequestDocument:
    """Read a request document file (YAML), problems with their line numbers."""
    from yunshang.errors import InputInvalid

    problems: list[Problem] = []
    raw, doc, _ = _read_yaml(Path(path), problems)
    if doc is None:
        raise InputInvalid(problems)
    return request_document(raw, str(path), department_level, doc)


def parse_request_text(text: str | bytes, file: str, department_level: Callable[[str], int | None] | None = None,
                       max_bytes: int | None = None) -> RequestDocument:
    """A request document sent as YAML text (the API's ``application/yaml`` body): the same safe
    loader as a file (size, alias bombs, duplicate keys, depth) and the same schema, with lines."""
    from yunshang.yamlload import MAX_BYTES

    ydoc = parse_yaml(text, file, max_bytes=max_bytes or MAX_BYTES)
    return request_document(ydoc.value, file, department_level, _Doc(file, [], ydoc))


_department_file = c_record(
    {"name": c_name, "mlps_level": c_int(1, 4, " (MLPS level)"), "contracts": c_list(_contract)},
    {"display_name": c_text, "requests": c_list(_request), "users": c_list(_user), "probes": c_list(_probe),
     "site": c_name})


# --------------------------------------------------------------------------- people.yaml
def _build_person(doc, path, p):
    roles = tuple(p["roles"])
    dept = _opt(p, "department", "")
    if not roles:
        doc.err(path + ("roles",), f"expected at least one of {', '.join(PERSON_ROLES)}")
        return _BAD
    scoped = [r for r in roles if r in DEPARTMENT_ROLES]
    if scoped and not dept:
        doc.err(path + ("department",), f"missing: roles {', '.join(scoped)} act for one department; name it")
        return _BAD
    if dept and not scoped:
        doc.err(path + ("department",), f"center-wide roles ({', '.join(roles)}) belong to no department; "
                                        "remove department")
        return _BAD
    return Person(name=p["name"], display_name=p["display_name"], roles=roles, department=dept,
                  email=_opt(p, "email", ""))


_person = c_record({"name": c_name, "display_name": c_text, "roles": c_list(c_choice(*PERSON_ROLES))},
                   {"department": c_name, "email": c_any_text}, _build_person)
_approval = c_record({}, {"department_head_endorses": c_bool,
                          "two_approvers_above_cny_per_month": c_num(0.0, what=" CNY per month")},
                     build=lambda doc, path, a: ApprovalPolicy(
                         department_head_endorses=_opt(a, "department_head_endorses", True),
                         two_approvers_above_cny_per_month=_opt(a, "two_approvers_above_cny_per_month",
                                                                ApprovalPolicy().two_approvers_above_cny_per_month)))
_people_file = c_record({"people": c_list(_person)}, {"approval": _approval})


def _read_people(root: Path, department_names: set[str], problems: list[Problem]
                 ) -> tuple[tuple[Person, ...], ApprovalPolicy]:
    """``people.yaml`` (optional): the center's people and the approval chain."""
    pfile = root / "people.yaml"
    if not pfile.is_file():
        return (), ApprovalPolicy()
    raw, doc, _ = _read_yaml(pfile, problems)
    if doc is None:
        return (), ApprovalPolicy()
    if raw is None:
        doc.err((), "file is empty; expected a mapping with 'people:'")
        return (), ApprovalPolicy()
    checked = _people_file(doc, (), raw)
    items = _list_at(raw, "people")
    _dups(doc, ("people",), [(i, x.get("name")) for i, x in enumerate(items) if isinstance(x, dict)], "person")
    for i, x in enumerate(items):
        d = x.get("department") if isinstance(x, dict) else None
        if isinstance(d, str) and department_names and d not in department_names:
            close = difflib.get_close_matches(d, sorted(department_names), n=1)
            doc.err(("people", i, "department"), f"unknown department '{d}'"
                    + (f" (did you mean '{close[0]}'?)" if close else ""))
    if checked is _BAD:
        return (), ApprovalPolicy()
    return tuple(checked["people"]), _opt(checked, "approval", ApprovalPolicy())


# --------------------------------------------------------------------------- templates/*.yaml
_size = c_record({"vcpu": c_int(1, MAX_SIZE), "ram_gb": c_int(1, MAX_SIZE), "disk_gb": c_int(0, MAX_SIZE)},
                 build=lambda doc, path, s: Size(**s))


def _build_rule(doc, path, r):
    proto = r["protocol"]
    port, pmin, pmax = _opt(r, "port", None), _opt(r, "port_min", None), _opt(r, "port_max", None)
    if port is not None and (pmin is not None or pmax is not None):
        doc.err(path + ("port",), "expected either port or port_min/port_max, not both")
        return _BAD
    if port is not None:
        pmin = pmax = port
    if (pmin is None) != (pmax is None):
        doc.err(path, "expected both port_min and port_max (or a single port)")
        return _BAD
    if pmin is not None and proto in ("icmp", "any"):
        doc.err(path + ("protocol",), f"ports only apply to tcp or udp, got protocol {proto} with ports")
        return _BAD
    if pmin is not None and pmin > pmax:
        doc.err(path + ("port_max",), f"expected port_max >= port_min ({pmin}), got {pmax}")
        return _BAD
    return Rule(protocol=proto, port_min=pmin, port_max=pmax, remote_cidr=r["remote_cidr"],
                description=_opt(r, "description", ""))


_rule = c_record({"protocol": c_choice(*PROTOCOLS), "remote_cidr": c_cidr},
                 {"port": c_int(1, 65535), "port_min": c_int(1, 65535), "port_max": c_int(1, 65535),
                  "description": c_any_text}, _build_rule)
_volume = c_record({"name": c_name, "size_gb": c_int(1, MAX_SIZE)}, build=lambda doc, path, v: VolumeSpec(**v))

_template_file = c_record(
    {"name": c_name, "sizes": c_map_of(_size)},
    {"floating_ips": c_int(0, MAX_COUNT), "ingress": c_list(_rule), "egress": c_list(_rule), "image": c_text,
     "volumes": c_list(_volume), "user_data": c_any_text})


def _check_jinja(doc: _Doc, path: tuple, source: str, template_name: str) -> None:
    """What the render sandbox would refuse: syntax, unknown variables, a trial render's failure."""
    from yunshang.templates import check_user_data

    for ud_line, message in check_user_data(source, template_name):
        line = (doc.ydoc.content_line(path) if doc.ydoc else None) or doc.line(path)
        if line is not None and ud_line is not None:
            line += ud_line - 1
        doc.problems.append(Problem(doc.file, fmt_path(path), message, line))


# --------------------------------------------------------------------------- the catalog
def _yaml_files(folder: Path, problems: list[Problem]) -> list[Path]:
    if not folder.is_dir():
        return []
    return yaml_files(folder, problems)


def _missing_dir(folder: Path, problems: list[Problem], expected: str) -> None:
    if os.path.lexists(folder) and not folder.is_dir():
        what = "a dangling or looping symbolic link" if folder.is_symlink() else "not a directory"
        problems.append(Problem(str(folder), "", f"expected {expected}; it is {what}"))
    elif not folder.is_dir():
        problems.append(Problem(str(folder), "", f"missing: expected {expected}"))


def load_catalog(path: str | Path) -> Catalog:
    """Read ``path`` (a catalog directory) into a Catalog, or raise CatalogInvalid with every problem."""
    # Loading builds hundreds of thousands of small acyclic objects: the cycle collector would walk
    # them again and again (~10 % of a 1,000-file load) and can free nothing. Paused, then restored.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load_catalog(path)
    finally:
        if paused:
            gc.enable()


def _load_catalog(path: str | Path) -> Catalog:
    root = Path(path)
    problems: list[Problem] = []
    if not root.is_dir():
        raise CatalogInvalid([Problem(str(root), "", "expected a catalog directory (providers.yaml, departments/, "
                                                     "templates/); it does not exist or is not a directory")])

    # sites (optional; yunshang.sites reads and checks them)
    site_list, site_names = sites_mod.read_sites(root, problems)

    # migration settings (optional)
    migration_hash = _read_migration(root, problems)

    # providers
    providers: list[Provider] = []
    provider_names_written: set[str] = set()   # names as written, even in entries with other problems
    providers_readable = False                  # False: skip provider references (no cascade of problems)
    pfile = root / "providers.yaml"
    if not os.path.lexists(pfile):
        problems.append(Problem(str(pfile), "", "missing: expected providers.yaml with a 'providers:' list"))
    else:
        raw, doc, _ = _read_yaml(pfile, problems)
        if doc is not None:
            if raw is None:
                doc.err((), "file is empty; expected a mapping with 'providers:'")
            else:
                checked = _providers_file(doc, (), raw)
                sites_mod.zone_references(doc, raw, site_names)
                plist = raw.get("providers") if isinstance(raw, dict) else None
                if isinstance(plist, list):
                    providers_readable = True
                    # report duplicates even when some entries are bad
                    names = [(i, p.get("name")) for i, p in enumerate(plist) if isinstance(p, dict)]
                    provider_names_written = {n for _, n in names if isinstance(n, str)}
                    _dups(doc, ("providers",), names, "provider name")
                    clouds = [(i, p.get("cloud")) for i, p in enumerate(plist) if isinstance(p, dict)]
                    _dups(doc, ("providers",), clouds, "cloud", field="cloud")
                    if not plist:
                        doc.err(("providers",), "expected at least one provider")
                if checked is not _BAD:
                    providers = [p for p in checked["providers"] if p is not _BAD]

    # templates
    templates: dict[str, Template] = {}
    tdir = root / "templates"
    _missing_dir(tdir, problems, "a templates/ directory with <name>.yaml files")
    template_sizes_written: dict[str, set[str] | None] = {}
    template_files: dict[str, str] = {}
    for tf in _yaml_files(tdir, problems):
        raw, doc, text = _read_yaml(tf, problems)
        if doc is None:
            template_sizes_written[tf.stem] = None
            continue
        if raw is None:
            doc.err((), "file is empty; expected a template with name and sizes")
            template_sizes_written.setdefault(tf.stem, None)
            continue
        checked = _template_file(doc, (), raw)
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            template_sizes_written.setdefault(tf.stem, None)     # broken, but exists: no cascade
        if isinstance(raw, dict):
            name = raw.get("name")
            if isinstance(name, str):
                if name in template_files:
                    doc.err(("name",), f"duplicate template name '{name}' (also in {template_files[name]})")
                else:
                    template_files[name] = str(tf)
                    sizes = raw.get("sizes")
                    template_sizes_written[name] = set(sizes) if isinstance(sizes, dict) else None
                if name != tf.stem:
                    doc.err(("name",), f"expected the file name to match: name '{name}' in {tf.name}")
            ud = raw.get("user_data")
            if isinstance(ud, str):
                _check_jinja(doc, ("user_data",), ud, tf.stem)
        if checked is _BAD or checked["name"] in templates or checked["name"] != tf.stem:
            continue
        if not checked["sizes"]:
            doc.err(("sizes",), "expected at least one size")
            continue
        vols = _opt(checked, "volumes", [])
        _unique(doc, ("volumes",), vols, lambda v: v.name, "volume name")
        templates[checked["name"]] = Template(
            name=checked["name"], file=str(tf), sizes=frozen_mapping(checked["sizes"]),
            floating_ips=_opt(checked, "floating_ips", 0), ingress=tuple(_opt(checked, "ingress", [])),
            egress=tuple(_opt(checked, "egress", [])), image=_opt(checked, "image", "cirros"),
            volumes=tuple(vols), user_data=_opt(checked, "user_data", ""), source=text)

    # departments
    departments: list[Department] = []
    ddir = root / "departments"
    _missing_dir(ddir, problems, "a departments/ directory with <name>.yaml files")
    dept_files: dict[str, str] = {}
    contract_ids: dict[str, str] = {}
    for df in _yaml_files(ddir, problems):
        raw, doc, _ = _read_yaml(df, problems)
        if doc is None:
            continue
        if raw is None:
            doc.err((), "file is empty; expected a department with name, mlps_level, contracts, requests")
            continue
        checked = _department_file(doc, (), raw)
        if not isinstance(raw, dict):
            continue
        name = raw.get("name")
        dup = False
        if isinstance(name, str):
            if name in dept_files:
                doc.err(("name",), f"duplicate department name '{name}' (also in {dept_files[name]})")
                dup = True
            else:
                dept_files[name] = str(df)
            if name != df.stem:
                doc.err(("name",), f"expected the file name to match: name '{name}' in {df.name}")
                dup = True
        dept_ok = checked is not _BAD and not dup
        # cross references, checked on the raw values so that one bad field does not hide others
        contracts_raw = _list_at(raw, "contracts")
        contract_ids_here = set()
        for i, c in enumerate(contracts_raw):
            if not isinstance(c, dict):
                continue
            cid, prov = c.get("id"), c.get("provider")
            if isinstance(cid, str):
                if cid in contract_ids_here:
                    doc.err(("contracts", i, "id"), f"duplicate contract id '{cid}'")
                    dept_ok = False
                elif cid in contract_ids:
                    doc.err(("contracts", i, "id"), f"duplicate contract id '{cid}' (also in {contract_ids[cid]})")
                    dept_ok = False
                contract_ids_here.add(cid)
                contract_ids.setdefault(cid, str(df))
            if providers_readable and isinstance(prov, str) and prov not in provider_names_written:
                known = ", ".join(sorted(provider_names_written)) or "none"
                doc.err(("contracts", i, "provider"), f"unknown provider '{prov}' (providers.yaml has: {known})")
                dept_ok = False
        requests_raw = _list_at(raw, "requests")
        seen_req: dict[str, int] = {}
        for i, r in enumerate(requests_raw):
            if not isinstance(r, dict):
                continue
            rn, tn, sz = r.get("name"), r.get("template"), r.get("size")
            if isinstance(rn, str):
                if rn in seen_req:
                    doc.err(("requests", i, "name"), f"duplicate request name '{rn}' (also at requests[{seen_req[rn]}])")
                    dept_ok = False
                else:
                    seen_req[rn] = i
            if isinstance(tn, str):
                if tn not in template_sizes_written:
                    known = ", ".join(sorted(template_sizes_written)) or "none"
                    doc.err(("requests", i, "template"), f"unknown template '{tn}' (templates/ has: {known})")
                    dept_ok = False
                elif isinstance(sz, str) and (sizes := template_sizes_written[tn]) is not None and sz not in sizes:
                    doc.err(("requests", i, "size"),
                            f"unknown size '{sz}' of template {tn} (it has: {', '.join(sorted(sizes))})")
                    dept_ok = False
        for key, what in (("users", "user name"), ("probes", "probe name")):
            entries = _list_at(raw, key)
            before = len(problems)
            _dups(doc, (key,), [(i, x.get("name")) for i, x in enumerate(entries) if isinstance(x, dict)], what)
            dept_ok = dept_ok and len(problems) == before
        probes_raw = _list_at(raw, "probes")
        for i, p in enumerate(probes_raw):
            if isinstance(p, dict) and isinstance(p.get("contract"), str) and p["contract"] not in contract_ids_here:
                doc.err(("probes", i, "contract"), f"unknown contract '{p['contract']}' (this department has: "
                                                   f"{', '.join(sorted(contract_ids_here)) or 'none'})")
                dept_ok = False
        if "site" in raw and not sites_mod.check_reference(doc, ("site",), raw["site"], site_names):
            dept_ok = False
        if not dept_ok:
            continue
        level = checked["mlps_level"]
        requests = tuple(_build_request(r, level) for r in _opt(checked, "requests", []))
        departments.append(Department(
            name=checked["name"], display_name=_opt(checked, "display_name", checked["name"]), mlps_level=level,
            contracts=tuple(checked["contracts"]), requests=requests, users=tuple(_opt(checked, "users", [])),
            probes=tuple(_opt(checked, "probes", [])), site=_opt(checked, "site", "")))

    people, approval = _read_people(root, set(dept_files), problems)
    if problems:
        first: dict[str, int] = {}
        for p in problems:
            first.setdefault(p.file, len(first))
        raise CatalogInvalid(sorted(problems, key=lambda p: (first[p.file], p.line or 0)))
    departments.sort(key=lambda d: d.name)
    departments = [_with_index(d, i) for i, d in enumerate(departments, start=1)]
    return sites_mod.resolve_catalog(Catalog(
        root=str(root), providers=tuple(providers), departments=tuple(departments),
        templates=frozen_mapping(dict(sorted(templates.items()))), sites=site_list, people=people,
        approval=approval, migration_hash_algorithm=migration_hash))


_migration_file = c_record({}, {"hash_algorithm": c_choice(*MIGRATION_HASH_ALGORITHMS)})


def _read_migration(root: Path, problems: list[Problem]) -> str:
    """``<root>/migration.yaml`` (optional): ``hash_algorithm: sha256 | sm3``, the digest of
    `yunshang migrate`'s integrity evidence for this center's migrations. No file: sha256."""
    path = root / "migration.yaml"
    if not os.path.lexists(path):
        return DEFAULT_MIGRATION_HASH
    raw, doc, _ = _read_yaml(path, problems)
    if doc is None:
        return DEFAULT_MIGRATION_HASH
    if raw is None:
        doc.err((), "file is empty; expected a mapping such as 'hash_algorithm: sm3' (or delete the file: sha256)")
        return DEFAULT_MIGRATION_HASH
    checked = _migration_file(doc, (), raw)
    if checked is _BAD:
        return DEFAULT_MIGRATION_HASH
    return _opt(checked, "hash_algorithm", DEFAULT_MIGRATION_HASH)


def _with_index(d: Department, index: int) -> Department:
    from dataclasses import replace

    return replace(d, cidr_index=index)


def _dups(doc: _Doc, path: tuple, indexed: list[tuple[int, Any]], what: str, field: str = "name") -> None:
    seen: dict[Any, int] = {}
    for i, k in indexed:
        if not isinstance(k, str):
            continue
        if k in seen:
            doc.err(path + (i, field), f"duplicate {what} '{k}' (also at {fmt_path(path + (seen[k],))})")
        else:
            seen[k] = i


# --------------------------------------------------------------------------- show
def catalog_to_dict(catalog: Catalog) -> dict:
    """The whole catalog as plain JSON-able data (dates as ISO text), in catalog order."""
    from dataclasses import asdict

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (dt.date, dt.datetime)):
            return x.isoformat()
        return x

    templates = {}
    for name, t in catalog.templates.items():
        templates[name] = {
            "file": t.file, "image": t.image, "floating_ips": t.floating_ips,
            "sizes": {k: asdict(v) for k, v in t.sizes.items()},
            "ingress": [asdict(r) for r in t.ingress], "egress": [asdict(r) for r in t.egress],
            "volumes": [asdict(v) for v in t.volumes], "user_data": t.user_data,
        }
    return clean({
        "root": catalog.root,
        "providers": [asdict(p) for p in catalog.providers],
        "departments": [asdict(d) for d in catalog.departments],
        "templates": templates,
        "sites": [asdict(s) for s in catalog.sites],
    })
