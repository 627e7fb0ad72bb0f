"""Options and helpers shared by the command groups."""
from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

import click



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


def clouds_option(f: Callable) -> Callable:
    return click.option(
        "--clouds", "clouds_file", envvar="OS_CLIENT_CONFIG_FILE", type=click.Path(dir_okay=False), metavar="FILE",
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
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
