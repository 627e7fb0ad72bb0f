"""Render a template's Jinja2 ``user_data`` for one server.

Undefined variables are errors (``StrictUndefined``): a bad variable raises
``TemplateRenderError`` naming the template file and the line in that file.
Pure: no I/O besides what the caller passes in.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Mapping

import jinja2

from yunshang.errors import TemplateRenderError
from yunshang.model import Template

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
_USER_DATA_KEY = re.compile(r"^\s*user_data\s*:")


def user_data_offset(template: Template) -> int:
    """Line number (1-based) in the template file just before the first line of ``user_data``.

    ``user_data: |`` block scalars start on the next line, so a Jinja2 error on
    line ``n`` of the user_data is on line ``offset + n`` of the file. When the
    raw source is unknown, 0 (lines are then counted inside user_data)."""
    for i, line in enumerate(template.source.splitlines(), start=1):
        if _USER_DATA_KEY.match(line):
            rest = line.split(":", 1)[1].strip()
            # `user_data: |` (block) -> content starts on the next line; inline -> this line
            return i if rest[:1] in ("|", ">") or rest == "" else i - 1
    return 0


def _line_of(exc: BaseException, name: str) -> int | None:
    """The template line an exception was raised from (Jinja2 rewrites frames to template lines)."""
    lineno = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


@functools.lru_cache(maxsize=256)
def _compiled(template_name: str, filename: str, source: str) -> jinja2.Template:
    """Compiled once per (template, source), under our own filename so traceback frames map
    to user_data lines."""
    code = _ENV.compile(source, name=template_name, filename=filename)
    return jinja2.Template.from_code(_ENV, code, _ENV.make_globals(None))


def render_user_data(template: Template, variables: Mapping[str, Any]) -> str:
    """Render ``template.user_data`` with ``variables``; '' when the template has none."""
    if not template.user_data:
        return ""
    name = f"<user_data of {template.file}>"
    try:
        return _compiled(template.name, name, template.user_data).render(**dict(variables))
    except jinja2.TemplateError as exc:
        line = _line_of(exc, name)
        where = template.file
        if line is not None:
            where = f"{template.file}:{user_data_offset(template) + line}"
        kind = "syntax error" if isinstance(exc, jinja2.TemplateSyntaxError) else "render error"
        raise TemplateRenderError(
            f"{where}: user_data: {kind}: {exc.message or exc.__class__.__name__}"
            f" (variables available: {', '.join(sorted(variables))})") from None
