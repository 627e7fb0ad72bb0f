"""Fixtures of the exporter integration tests (the harness lives in exporter_harness.py)."""
from exporter_harness import procs  # noqa: F401  (fixture)
