"""Render a template's Jinja2 ``user_data`` for one server: as data, never as code.

A template is input from a department, so it is hostile. It is rendered in
Jinja2's ``ImmutableSandboxedEnvironment`` (no ``_``-attributes, no mutation of
lists/dicts, no unsafe callables: ``{{ cycler.__init__.__globals__.os }}`` is a
refusal), with only the documented variables (``VARIABLES``; nothing of the
operator's environment, no ``lipsum``/``cycler``/``joiner``/``namespace``) and
``StrictUndefined`` (an unknown variable is an error), and bounded:

* steps: every loop iteration, call, filter and intercepted operator counts;
  more than ``MAX_STEPS`` or ``MAX_SECONDS`` of wall time is a refusal;
* size: no single value (string, list, number) over ``MAX_VALUE``; the whole
  output at most ``MAX_OUTPUT`` (Nova's user_data limit is 64 KiB); the bytes a
  render produces in all, at most ``MAX_ALLOCATED``; integer arguments of calls
  and filters (widths, counts) at most ``MAX_ARG``.

Every failure is a ``TemplateRenderError`` (exit 2) naming the template file
and the line in that file. ``check_user_data`` is what ``catalog validate`` runs:
syntax, unknown variables, and a trial render with sample values.
"""
from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from typing import Any, Iterable, Iterator, Mapping

import jinja2
from jinja2 import nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.visitor import NodeTransformer

from yunshang.errors import TemplateRenderError
from yunshang.model import Template

# The variables a user_data template may use (docs/tenants.md), with the sample values
# `catalog validate` renders it with.
VARIABLES: dict[str, Any] = {
    "department": "sample-dept", "display_name": "示例部门", "operator": "telecom", "provider": "telecom",
    "request": "app", "role": "primary", "server": "sample-dept-app-01", "instance": "sample-dept-app-01",
    "index": 1, "zone": "az1", "template": "web", "size": "small", "vcpu": 2, "ram_gb": 4, "disk_gb": 50,
    "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.1", "management_cidr": "10.255.0.0/16", "mlps_level": 3,
    "project": "dept-sample-dept", "contract": "SAMPLE-2026-01",
}
GLOBALS = ("range", "dict")

MAX_SOURCE = 64 * 1024          # characters of user_data source
MAX_OUTPUT = 64 * 1024          # characters of rendered user_data
MAX_VALUE = 1024 * 1024         # size of any one value made while rendering
MAX_ALLOCATED = 16 * 1024 * 1024
MAX_ARG = 10_000                # integer arguments of calls and filters (widths, counts)
MAX_INT_BITS = 4096
MAX_STEPS = 100_000
MAX_SECONDS = 1.0

_USER_DATA_KEY = re.compile(r"\s*user_data\s*:")
_FORMAT_WIDTH = re.compile(r"\d{6,}|\*")   # a width/precision of 100000+ (or `*`) in a format spec


class _Budget:
    __slots__ = ("steps", "allocated", "deadline")

    def __init__(self) -> None:
        self.steps = 0
        self.allocated = 0
        self.deadline = time.monotonic() + MAX_SECONDS


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("yunshang_template_budget", default=None)


def _tick() -> None:
    b = _BUDGET.get()
    if b is None:
        return
    b.steps += 1
    if b.steps > MAX_STEPS:
        raise SecurityError(f"too much work: more than {MAX_STEPS:,} steps (loop iterations, calls, filters)")
    if not b.steps & 255 and time.monotonic() > b.deadline:
        raise SecurityError(f"took longer than {MAX_SECONDS:g} s")


def _size(x: Any, limit: int = MAX_VALUE) -> int:
    """A cheap upper-bound-ish size of a value; stops counting once over ``limit``."""
    if isinstance(x, (str, bytes)):
        return len(x)
    if isinstance(x, bool) or x is None:
        return 1
    if isinstance(x, int):
        return x.bit_length() // 8 + 1
    if isinstance(x, (list, tuple, set, frozenset, dict)):
        total = len(x)
        items: Iterable[Any] = x.items() if isinstance(x, dict) else x
        for item in items:
            total += _size(item, limit - total)
            if total > limit:
                break
        return total
    return 1


def _charge(value: Any, what: str) -> Any:
    """Count a value just made against the budget; refuse one too large."""
    n = _size(value)
    if n > MAX_VALUE:
        raise SecurityError(f"{what} makes a value too large ({n:,} > {MAX_VALUE:,})")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"{what} makes a number too large (more than {MAX_INT_BITS} bits)")
    b = _BUDGET.get()
    if b is not None and n > 64:
        b.allocated += n
        if b.allocated > MAX_ALLOCATED:
            raise SecurityError(f"makes more than {MAX_ALLOCATED:,} bytes of values in all")
    return value


def _check_args(args: Iterable[Any], what: str) -> None:
    for a in args:
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ARG:
            raise SecurityError(f"{what}: argument {a} is too large (at most {MAX_ARG:,})")
        if isinstance(a, float) and (not math.isfinite(a) or abs(a) > MAX_ARG):
            raise SecurityError(f"{what}: argument {a} is too large (at most {MAX_ARG:,})")


def _check_format(fmt: str, what: str) -> None:
    if _FORMAT_WIDTH.search(fmt):
        raise SecurityError(f"{what}: format width or precision too large (or '*')")


def _ticking(iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this: one step per item."""
    for item in iterable:
        _tick()
        yield item


def _concat(items: Iterable[Any]) -> str:
    """The ``~`` operator, bounded."""
    parts, n = [], 0
    for x in items:
        s = x if isinstance(x, str) else str(x)
        n += len(s)
        if n > MAX_VALUE:
            raise SecurityError(f"'~' makes a text too large (more than {MAX_VALUE:,} characters)")
        parts.append(s)
    return _charge("".join(parts), "'~'")


def _estimate_filter(name: str, value: Any, args: tuple, kwargs: dict) -> int:
    """Upper bound of a size-amplifying filter's result, before running it."""
    n = _size(value)
    if name == "indent":
        width = kwargs.get("width", args[0] if args else 4)
        return n * (1 + (len(width) if isinstance(width, str) else int(width or 0)))
    if name == "wordwrap":
        wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else "\n") or "\n"
        return n * (1 + len(str(wrap)))
    if name == "replace":
        new = kwargs.get("new", args[1] if len(args) > 1 else "")
        return n * (1 + len(str(new)))
    if name == "join":
        sep = kwargs.get("d", args[0] if args else "")
        return n * (1 + len(str(sep)))
    if name == "center":
        return n + int(kwargs.get("width", args[0] if args else 80))
    return 0


def _guard_filter(name: str, fn: Any) -> Any:
    pass_arg = getattr(fn, "jinja_pass_arg", None)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        i = 1 if pass_arg is not None else 0           # (context|eval_ctx|environment,) value, args...
        value, rest = (args[i] if len(args) > i else None), args[i + 1:]
        what = f"filter {name}"
        _check_args(list(rest) + list(kwargs.values()), what)
        if name == "format" and isinstance(value, str):
            _check_format(value, what)
        if _estimate_filter(name, value, rest, kwargs) > MAX_VALUE:
            raise SecurityError(f"{what} would make a value too large (more than {MAX_VALUE:,})")
        return _charge(fn(*args, **kwargs), what)

    return guarded


class _Bounds(NodeTransformer):
    """Rewrites a parsed template so that loops and ``~`` go through the bounded helpers."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.ImportedName(f"{__name__}._ticking"), [node.iter], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.ImportedName(f"{__name__}._concat"), [nodes.List(node.nodes, lineno=node.lineno)],
                          [], None, None, lineno=node.lineno)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every operation counted and sized."""

    intercepted_binops = frozenset(["*", "**", "+", "%", "//", "/", "-"])
    intercepted_unops = frozenset(["-", "+"])

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                         finalize=self._finalize)
        self.globals.clear()
        self.globals.update({"range": safe_range, "dict": dict})
        self.filters = {name: _guard_filter(name, fn) for name, fn in self.filters.items()}

    @staticmethod
    def _finalize(value: Any) -> Any:
        _tick()
        b = _BUDGET.get()
        if b is not None:
            b.allocated += _size(value)
            if b.allocated > MAX_ALLOCATED:
                raise SecurityError(f"makes more than {MAX_ALLOCATED:,} bytes of values in all")
        return value

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        """Joins every captured buffer (macros, {% set %} blocks, call/filter blocks), bounded."""
        out, n = [], 0
        for s in parts:
            n += len(s)
            if n > MAX_VALUE:
                raise SecurityError(f"a block makes a text too large (more than {MAX_VALUE:,} characters)")
            out.append(s)
        return "".join(out)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        what = f"'{operator}'"
        if operator == "**":
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                if abs(right) > MAX_INT_BITS or (isinstance(left, int) and isinstance(right, int) and right > 0
                                                 and left.bit_length() * right > MAX_INT_BITS):
                    raise SecurityError(f"{what}: power too large")
        elif operator == "*":
            for seq, k in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(k, int) and _size(seq) * max(k, 0) > MAX_VALUE:
                    raise SecurityError(f"{what} would make a value too large (more than {MAX_VALUE:,})")
            if isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"{what}: number too large")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and _size(left) + _size(right) > MAX_VALUE:
                raise SecurityError(f"{what} would make a value too large (more than {MAX_VALUE:,})")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, what)
        return _charge(self.binop_table[operator](left, right), what)

    def call_unop(self, context: Any, operator: str, arg: Any) -> Any:
        _tick()
        return self.unop_table[operator](arg)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        target = getattr(__obj, "__wrapped__", __obj)
        name = getattr(target, "__name__", "a call")
        name = "range" if name == "safe_range" else name
        if __obj is not _ticking and __obj is not _concat:
            _check_args(list(args) + list(kwargs.values()), name)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                _check_format(owner, name)
            elif name == "replace" and len(args) > 1:
                if len(owner) * (1 + len(str(args[1]))) > MAX_VALUE:
                    raise SecurityError(f"{name} would make a text too large")
            elif name == "join" and args:
                items = list(args[0])
                if _size(items) + len(owner) * len(items) > MAX_VALUE:
                    raise SecurityError(f"{name} would make a text too large")
                args = (items,) + args[1:]
            elif name == "expandtabs":
                if len(owner) * (1 + int(args[0] if args else kwargs.get("tabsize", 8))) > MAX_VALUE:
                    raise SecurityError(f"{name} would make a text too large")
        return _charge(super().call(__context, __obj, *args, **kwargs), name)


_ENV = _Sandbox()


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


def _parse(source: str, template_name: str, filename: str) -> nodes.Template:
    if len(source) > MAX_SOURCE:
        raise SecurityError(f"user_data is too long ({len(source):,} characters, at most {MAX_SOURCE:,})")
    return _ENV.parse(source, name=template_name, filename=filename)


@functools.lru_cache(maxsize=256)
def _compiled(template_name: str, filename: str, source: str) -> jinja2.Template:
    """Compiled once per (template, source), under our own filename so traceback frames map
    to user_data lines; loops and ``~`` rewritten to their bounded forms."""
    ast = _Bounds().visit(_parse(source, template_name, filename))
    ast.set_environment(_ENV)
    code = _ENV.compile(ast, name=template_name, filename=filename)
    return jinja2.Template.from_code(_ENV, code, _ENV.make_globals(None))


class _OutputTooLarge(SecurityError):
    """The rendered output crossed MAX_OUTPUT; ``lineno``: the template line whose output crossed it."""

    def __init__(self, message: str, lineno: int | None):
        super().__init__(message)
        self.lineno = lineno


def _yielding_line(tmpl: jinja2.Template, gen: Any) -> int | None:
    """The template line whose output ``gen`` (a suspended ``tmpl.generate()``) just yielded."""
    while getattr(gen, "gi_yieldfrom", None) is not None:     # generate() -> root render function -> block
        gen = gen.gi_yieldfrom
    frame = getattr(gen, "gi_frame", None)
    if frame is None or frame.f_code.co_filename != tmpl.filename:
        return None
    return tmpl.get_corresponding_lineno(frame.f_lineno)


def _render(tmpl: jinja2.Template, variables: Mapping[str, Any]) -> str:
    token = _BUDGET.set(_Budget())
    try:
        out, n = [], 0
        gen = tmpl.generate(**dict(variables))
        for chunk in gen:
            n += len(chunk)
            if n > MAX_OUTPUT:
                line = _yielding_line(tmpl, gen)
                raise _OutputTooLarge(f"output too large (more than {MAX_OUTPUT:,} characters; Nova accepts 64 KiB)", line)
            out.append(chunk)
        return "".join(out)
    finally:
        _BUDGET.reset(token)


def _message(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    if isinstance(exc, RecursionError):
        return "recursion too deep"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _kind(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return "syntax error"
    if isinstance(exc, SecurityError):
        return "refused by the sandbox"
    return "render error"


def render_user_data(template: Template, variables: Mapping[str, Any]) -> str:
    """Render ``template.user_data`` with ``variables`` (only ``VARIABLES`` names); '' when it has none."""
    if not template.user_data:
        return ""
    unknown = sorted(set(variables) - set(VARIABLES))
    if unknown:   # a programming error upstream, reported like any other so nothing leaks in unnoticed
        raise TemplateRenderError(f"{template.file}: user_data: undocumented variables passed: {', '.join(unknown)}")
    name = f"<user_data of {template.file}>"
    try:
        return _render(_compiled(template.name, name, template.user_data), variables)
    except Exception as exc:  # a template is input: every failure is the template's error, with its line
        line = _line_of(exc, name)   # None only if no template line is known: then the first line of user_data
        where = f"{template.file}:{user_data_offset(template) + (line or 1)}"
        raise TemplateRenderError(
            f"{where}: user_data: {_kind(exc)}: {_message(exc)}"
            f" (variables available: {', '.join(sorted(variables))})") from None


def check_user_data(source: str, template_name: str = "sample") -> list[tuple[int | None, str]]:
    """What ``catalog validate`` reports about a user_data text: [(line in user_data, message)].

    Syntax errors, variables that are not documented, and anything the sandbox refuses or
    fails on in a trial render with sample values (``VARIABLES``)."""
    name = f"<user_data check of {template_name}>"
    try:
        ast = _parse(source, template_name, name)
    except jinja2.TemplateSyntaxError as exc:
        return [(exc.lineno, f"Jinja2 syntax error on line {exc.lineno} of user_data: {exc.message}")]
    except SecurityError as exc:
        return [(None, str(exc))]
    unknown = sorted(find_undeclared_variables(ast) - set(VARIABLES) - set(GLOBALS))
    if unknown:
        lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name in unknown and n.ctx == "load"]
        return [(min(lines) if lines else None,
                 f"unknown variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in user_data "
                 f"(available: {', '.join(VARIABLES)})")]
    try:
        _render(_compiled(template_name, name, source), dict(VARIABLES, template=template_name))
    except Exception as exc:  # noqa: BLE001 - reported as the template's problem
        line = _line_of(exc, name)
        return [(line, f"user_data {_kind(exc)} (line {line} of user_data, sample values): {_message(exc)}"
                 if line else f"user_data {_kind(exc)} (sample values): {_message(exc)}")]
    return []
