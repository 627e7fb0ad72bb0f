"""The API server's logging: uvicorn's error and access logs, and every other logger, through the
project's one redaction helper (``yunshang.redact``).

A token in the ``X-Auth-Token`` header never reaches a log line (uvicorn logs no headers), but a
URL does, query string included: ``GET /api/v1/requests?password=...`` or ``?token=...`` typed by
someone is logged as ``?password=***``. The same goes for a library's message or a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

from uvicorn.logging import AccessFormatter, DefaultFormatter

from yunshang.redact import redact


class RedactingDefaultFormatter(DefaultFormatter):
    """uvicorn's error-log formatter, its whole output (message, arguments, traceback) redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingAccessFormatter(AccessFormatter):
    """uvicorn's access-log formatter (``client - "METHOD /path?query HTTP/1.1" status``), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for ``uvicorn.run(log_config=...)``: uvicorn's own
    layout (error log on stderr, access log on stdout) with redacting formatters, and the root
    logger (yunshang's own loggers, keystoneauth, psycopg) on the same redacted stderr handler."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": f"{__name__}.RedactingDefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                        "use_colors": False},
            "access": {"()": f"{__name__}.RedactingAccessFormatter", "use_colors": False,
                       "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": ["access"], "level": lvl, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
