"""One base error, a few subclasses named for what went wrong.

Each error formats its own message, redacted (``yunshang.redact``) when it is made. The CLI maps ``exit_code`` to the process
exit status; nothing below the CLI catches a library exception only to re-raise
a vaguer one.
"""
from __future__ import annotations

from dataclasses import dataclass

from yunshang.redact import redact


class YunshangError(Exception):
    """Base of every error yunshang raises on purpose."""

    exit_code = 1

    def __init__(self, message: str):
        message = redact(message)          # no error carries a password, token or DSN secret
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one clear line (or a short block for lists)
        return self.message


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file: where, which field, what was expected."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputInvalid(YunshangError):
    """An input file (catalog, survey, request) has problems; all are listed at once."""

    exit_code = 2
    what = "input"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(problems)
        n = len(self.problems)
        head = f"{self.what} invalid: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class CatalogInvalid(InputInvalid):
    what = "catalog"


class SurveyInvalid(InputInvalid):
    what = "survey"


class TemplateRenderError(YunshangError):
    exit_code = 2


class NotFound(YunshangError):
    """A named thing (department, operator, request, host) does not exist."""

    exit_code = 2


class UnknownName(NotFound, KeyError):
    """A name looked up in the catalog (department, operator, zone, contract, person) is not there.

    Still a ``KeyError`` for code that checks membership that way; uncaught, it is one line and
    exit 2 (e.g. a stored request naming a department the catalog no longer has)."""

    def __init__(self, kind: str, name: object, known: "list[str] | tuple[str, ...]" = ()):
        self.name = name
        shown = ", ".join(list(known)[:12]) + (", ..." if len(known) > 12 else "")
        super().__init__(f"unknown {kind} {str(name)[:80]!r}" + (f" (the catalog has: {shown})" if known else
                                                                " (the catalog has none)"))


class PlacementImpossible(YunshangError):
    exit_code = 3


class QuotaExceeded(YunshangError):
    """Admission refused: the tenant would not fit (names zone, resource, amount)."""

    exit_code = 3


class CloudUnavailable(YunshangError):
    """An operator's cloud could not be reached or refused our credentials."""

    exit_code = 4


class MigrationFailed(YunshangError):
    exit_code = 5


class ToolMissing(YunshangError):
    """An external binary (e.g. the pulumi CLI) is not installed."""

    exit_code = 6


class DevcloudFailed(YunshangError):
    """The devcloud could not be installed, started or stopped (the message names the log file)."""

    exit_code = 7
