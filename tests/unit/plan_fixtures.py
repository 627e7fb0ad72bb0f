"""A lifecycle store of the test's own with a recorded plan (what stack/tenant commands consume)."""
from __future__ import annotations

import datetime as dt


def record_plan_into(tmp_path, monkeypatch, catalog_dir, day: dt.date = dt.date(2026, 12, 1), departments=None):
    """Record ``place(catalog, day)`` in a fresh SQLite store, point YUNSHANG_DB at it; the record."""
    from yunshang.catalog import load_catalog
    from yunshang.placement import place
    from yunshang.plans import record_plan
    from yunshang.store import open_store

    db = "sqlite:///" + str(tmp_path / "plans.db")
    monkeypatch.setenv("YUNSHANG_DB", db)
    cat = load_catalog(catalog_dir)
    with open_store(db) as st:
        return record_plan(st, cat, place(cat, day), by="test", source="plan --save", departments=departments)
