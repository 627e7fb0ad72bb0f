"""Prometheus exporters: custom collectors over yunshang's core snapshots.

* ``collectors``  CapacityCollector, QuotaCollector, SpendCollector, SlaCollector, SelfCollector —
                  each takes its data source in its constructor and only translates records into
                  metric families (docstrings show sample exposition output).
* ``probes``      synthetic HTTP/TCP probes (the only network I/O of the SLA path).
* ``store``       the probe history (monthly tallies) persisted to a small JSON state file.
* ``service``     background collection on an interval + the /metrics HTTP server that serves the
                  latest rendered snapshot from memory.

See docs/exporters.md for metric names, sharding and the Prometheus configuration.
"""
