"""Options and helpers shared by the command groups."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from typing import Any, Callable, Iterable, Sequence

import click

# ----------------------------------------------------------------------------- argument types
# Every date, id, CIDR and output path a command takes is checked here, so that a bad one is one
# line and exit 2 (click's usage error) before anything runs or is written.
DAY_MIN, DAY_MAX = dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59)
ID_MAX = 2 ** 63 - 1


class BoundedDateTime(click.DateTime):
    """click.DateTime limited to 2000-01-01 .. 2099-12-31 (dates far out overflow date arithmetic)."""

    def convert(self, value, param, ctx):  # type: ignore[override]
        out = super().convert(value, param, ctx)
        if not DAY_MIN <= out.replace(tzinfo=None) <= DAY_MAX:
            self.fail(f"{value!s:.40} is out of range: expected a date from {DAY_MIN:%Y-%m-%d} to {DAY_MAX:%Y-%m-%d}",
                      param, ctx)
        return out


def day_type() -> click.ParamType:
    return BoundedDateTime(["%Y-%m-%d"])


def moment_type(formats: Sequence[str]) -> click.ParamType:
    return BoundedDateTime(list(formats))


ID = click.IntRange(1, ID_MAX)       # a stored id (sqlite / PostgreSQL bigint)


class Cidr(click.ParamType):
    name = "CIDR"

    def convert(self, value, param, ctx):  # type: ignore[override]
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(str(value), strict=True))
        except ValueError as exc:
            self.fail(f"expected a network in CIDR form like 10.250.0.0/24, got {str(value)[:60]!r} ({exc})", param, ctx)


class HttpUrl(click.ParamType):
    """An http(s)://HOST[:PORT][/path] URL (e.g. --prometheus); shown back with any password masked."""

    name = "URL"

    def convert(self, value, param, ctx):  # type: ignore[override]
        import urllib.parse

        from yunshang.redact import redact_url

        text = str(value)
        try:
            p = urllib.parse.urlsplit(text)
            ok = p.scheme in ("http", "https") and bool(p.hostname) and (p.port is None or 0 < p.port)
        except ValueError:
            ok = False
        if not ok or any(c.isspace() or ord(c) < 32 for c in text):
            self.fail(f"expected an http(s)://HOST:PORT URL, got {redact_url(text)[:80]!r}", param, ctx)
        return text


class OutPath(click.ParamType):
    """A path to write: its directory must exist (nothing is created on a typo), a file path must
    not be a directory, and the directory must be writable — checked before any work is done."""

    name = "PATH"

    def __init__(self, kind: str = "file"):
        self.kind = kind           # "file", "dir" (may exist or is created in an existing parent) or "any"

    def convert(self, value, param, ctx):  # type: ignore[override]
        path = os.fspath(value)
        if not path or "\x00" in path:
            self.fail("expected a path", param, ctx)
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            if self.kind == "file":
                self.fail(f"{path}: is a directory, expected a file path", param, ctx)
            if not os.access(path, os.W_OK):
                self.fail(f"{path}: directory is not writable", param, ctx)
            return path
        if os.path.lexists(path) and self.kind == "dir":
            self.fail(f"{path}: exists and is not a directory", param, ctx)
        if not os.path.isdir(parent):
            self.fail(f"{path}: the directory {parent} does not exist", param, ctx)
        if not os.access(parent, os.W_OK):
            self.fail(f"{path}: the directory {parent} is not writable", param, ctx)
        return path



def catalog_option(f: Callable) -> Callable:
    return click.option(
        "--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", required=True,
        type=click.Path(file_okay=False), metavar="DIR",
        help="Catalog directory (providers.yaml, departments/, templates/). Env: YUNSHANG_CATALOG.",
    )(f)


def output_option(f: Callable) -> Callable:
    return click.option(
        "--output", "-o", "output", type=click.Choice(["table", "json"]), default="table", show_default=True,
        help="table for people, json for machines.",
    )(f)


def _check_clouds(ctx, param, value):
    """A given clouds.yaml goes through the one safe loader before anything runs (exit 2 on a bad one);
    a missing one is left to the command (which reports each operator it cannot reach)."""
    if value and os.path.lexists(value):
        from yunshang.yamlload import read_yaml

        read_yaml(value)
    return value


def clouds_option(f: Callable) -> Callable:
    return click.option(
        "--clouds", "clouds_file", envvar="OS_CLIENT_CONFIG_FILE", type=click.Path(dir_okay=False), metavar="FILE",
        callback=_check_clouds,
        help="clouds.yaml with one named cloud per operator (the catalog's `cloud:` fields). "
             "Env: OS_CLIENT_CONFIG_FILE; default: openstacksdk's usual locations.",
    )(f)


def load_catalog(catalog_dir: str):
    from yunshang.catalog import load_catalog as _load

    return _load(catalog_dir)


def echo_json(data: Any) -> None:
    """JSON on stdout, with every secret a value may carry masked (``yunshang.redact``)."""
    from yunshang.redact import redact_obj

    click.echo(json.dumps(redact_obj(data), indent=2, ensure_ascii=False, sort_keys=False, default=str))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain fixed-width table (no colour codes, pipes cleanly into less/grep)."""
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max([_w(h)] + [_w(r[i]) for r in rows]) for i, h in enumerate(headers)]
    def fmt(cells):
        return "  ".join(c + " " * (widths[i] - _w(c)) for i, c in enumerate(cells)).rstrip()
    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def _w(s: str) -> int:
    """Display width: CJK characters take two columns."""
    if s.isascii():
        return len(s)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
