"""The steps a person triggers, called by BOTH the CLI and the API.

Each use case takes its I/O as arguments (:class:`Deps`: the lifecycle store, the catalog,
the clouds.yaml, a clock, a progress sink) and the authenticated :class:`~yunshang.authz.Identity`;
it authorises (``yunshang.authz``), decides through the pure core and records through the
store. Adapters parse, call one of these, and render.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _quiet(_: str) -> None:
    pass


@dataclass
class Deps:
    """What a use case may touch."""

    store: Any                                   # yunshang.store.Store
    catalog: Any                                 # yunshang.model.Catalog
    clouds_file: str | None = None               # the operators' clouds.yaml (live usage, configure)
    today: Callable[[], dt.date] = _today
    say: Callable[[str], None] = _quiet          # progress for people (stderr in the CLI)
    notify: Callable[[str, Any, str], None] | None = None   # (event, record, waiting role) -> notifications
    extra: dict = field(default_factory=dict)
