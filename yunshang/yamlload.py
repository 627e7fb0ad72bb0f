"""The one YAML loader: every YAML file yunshang reads goes through ``read_yaml`` / ``parse_yaml``.

Input is hostile. Before a value reaches a schema check, this module refuses,
quickly and with bounded memory, each with the file and line:

* files over ``MAX_BYTES`` (read at most ``MAX_BYTES + 1`` bytes, never the whole file);
* text that is not UTF-8, or holds NUL / other control characters YAML forbids;
* syntax errors (libyaml's message);
* nesting deeper than ``MAX_DEPTH``; alias "bombs" (more than ``MAX_NODES`` nodes once
  aliases are expanded) and recursive aliases;
* duplicate keys in a mapping (PyYAML keeps the last one silently), and keys that are
  not plain scalars;
* tags other than YAML's plain ones (str, int, float, bool, null, timestamp, map, seq);
* numbers that are not finite (``.inf``, ``.nan``) and integers beyond +/-2^63.

It is fast: the libyaml C parser/composer (``yaml.CSafeLoader``) builds the node
graph, one pass in Python checks and constructs it. Lines of any field path are
looked up in the node graph only when an error needs one (``YamlDoc.line``).

Errors are ``InputInvalid`` (exit 2) holding one ``Problem`` each; callers that
gather many problems (the catalog) catch it and keep going with other files.
"""
from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from yunshang.errors import InputInvalid, Problem

try:  # libyaml is part of every PyYAML wheel we install; the pure-Python one is the fallback
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader


_STR, _INT, _FLOAT, _BOOL, _NULL, _TS, _MAP, _SEQ, _MERGE = (
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge"))


class _FastLoader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader with plain-scalar tag resolution memoised (keys and small values repeat in
    every file; PyYAML's resolver runs a regex per scalar, the most expensive step of a load)."""

    _cache: dict[str, str] = {}
    # SafeLoader has no path resolvers, so these two (called by libyaml for every node) do nothing;
    # a C no-op that takes any arguments costs a third of a Python one.
    descend_resolver = ascend_resolver = "".format  # type: ignore[assignment]

    def resolve(self, kind, value, implicit):  # type: ignore[override]
        if kind is yaml.ScalarNode:
            if not implicit[0]:                   # quoted (or `!`): text
                return _STR
            tag = self._cache.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(value) <= 64 and len(self._cache) < 100_000:
                    self._cache[value] = tag
            return tag
        return _MAP if kind is yaml.MappingNode else _SEQ    # SafeLoader has no path resolvers


_Loader: type = _FastLoader

MAX_BYTES = 4 * 1024 * 1024      # one file: a catalog department, a survey, a clouds.yaml
MAX_DEPTH = 64                   # nested mappings/lists
MAX_NODES = 1_000_000            # nodes after aliases are expanded (an alias bomb is refused here)
INT_LIMIT = 2 ** 63              # integers must fit a signed 64-bit column

# YAML 1.1 printable set: TAB, LF, CR, 0x20-0x7E, NEL, 0xA0-... (surrogates and 0xFFFE/F excluded)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")

_Scalar, _Sequence = yaml.ScalarNode, yaml.SequenceNode
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class YamlDoc:
    """A parsed YAML document: ``value`` (plain Python data); lines of field paths on demand.

    The node graph is not kept (thousands of live node trees make Python's garbage collector
    the slowest part of loading a catalog): the first line lookup composes the text again."""

    __slots__ = ("file", "value", "_text", "_nodes")

    def __init__(self, file: str, value: Any, text: str | None):
        self.file = file
        self.value = value
        self._text = text
        self._nodes: yaml.Node | None = None

    @property
    def _root(self) -> yaml.Node | None:
        if self._nodes is None and self._text is not None:
            loader = _Loader(self._text)
            try:
                self._nodes = loader.get_single_node()
            finally:
                loader.dispose()
            if self._nodes is not None:
                _Builder(self.file).build(self._nodes)      # applies merge keys as the first pass did
        return self._nodes

    def node(self, path: tuple) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(node of the deepest existing prefix of ``path``, key node when the last step was a key)."""
        node, key_node = self._root, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part) and k.tag != _MERGE:
                        found = (k, v)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                break
        return node, key_node

    def line(self, path: tuple = ()) -> int | None:
        """The 1-based line of ``path`` (its key when it is a mapping entry), or of its deepest existing prefix."""
        if self._root is None:
            return None
        node, key_node = self.node(path)
        found = key_node or node
        mark = found.start_mark if found is not None else None
        return mark.line + 1 if mark is not None else None

    def content_line(self, path: tuple) -> int | None:
        """First line of a scalar's text: the line after ``key: |`` for block scalars, else its own line."""
        if self._root is None:
            return None
        node, _ = self.node(path)
        if node is None:
            return None
        return node.start_mark.line + (2 if getattr(node, "style", None) in ("|", ">") else 1)


def _problem(file: str, message: str, line: int | None = None, field: str = "") -> InputInvalid:
    return InputInvalid([Problem(file, field, message, line)])


def read_bytes(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, what: str = "file") -> bytes:
    """Read a regular file's bytes, refusing (InputInvalid, one line) what is not one or is too big.

    A dangling or looping symlink, a directory, a FIFO/device (which could block forever),
    an unreadable file and one over ``max_bytes`` are each refused; at most ``max_bytes + 1``
    bytes are ever read."""
    file = str(path)
    try:
        st = os.stat(file)
    except FileNotFoundError:
        if os.path.islink(file):
            raise _problem(file, f"dangling symbolic link (points to {os.readlink(file)!r}, which does not exist)") from None
        raise _problem(file, f"cannot read: {what} does not exist") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise _problem(file, "symbolic link loop") from None
        raise _problem(file, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _problem(file, f"expected a {what}, got a directory")
    if not stat.S_ISREG(st.st_mode):
        raise _problem(file, f"expected a regular {what}, got a special file (fifo, socket or device)")
    if st.st_size > max_bytes:
        raise _problem(file, f"file too large: {st.st_size:,} bytes (at most {max_bytes:,})")
    try:
        with open(file, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise _problem(file, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _problem(file, f"file too large: more than {max_bytes:,} bytes")
    return data


def decode_text(data: bytes, file: str) -> str:
    """Strict UTF-8 (a leading BOM is dropped); the line and byte of the first bad byte otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _problem(file, f"not UTF-8 text ({exc.reason} at byte {exc.start})", line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_yaml(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> YamlDoc:
    """Read and parse one YAML file (see the module text for what is refused)."""
    file = str(path)
    return parse_yaml(decode_text(read_bytes(file, max_bytes=max_bytes), file), file, max_bytes=max_bytes)


def load_yaml(path: str | os.PathLike) -> Any:
    """Just the value of ``read_yaml(path)``."""
    return read_yaml(path).value


def parse_yaml(text: str | bytes, file: str = "<text>", *, max_bytes: int = MAX_BYTES) -> YamlDoc:
    """Parse YAML text (str, or bytes as UTF-8) that claims to come from ``file``."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_bytes:
            raise _problem(file, f"file too large: {len(text):,} bytes (at most {max_bytes:,})")
        text = decode_text(bytes(text), file)
    elif len(text) > max_bytes:
        raise _problem(file, f"file too large: {len(text):,} characters (at most {max_bytes:,})")
    bad = _FORBIDDEN.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        what = "NUL byte" if bad.group() == "\x00" else f"control character U+{ord(bad.group()):04X}"
        raise _problem(file, f"{what} in the text (YAML allows none)", line)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        raise _problem(file, f"YAML syntax error: {what}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise _problem(file, f"YAML error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        loader.dispose()
    if root is None:
        return YamlDoc(file, None, None)
    return YamlDoc(file, _Builder(file).build(root), text)


class _Builder:
    """Checks a node graph (depth, expanded size, cycles) and turns it into plain Python values."""

    def __init__(self, file: str):
        self.file = file
        self.memo: dict[int, Any] = {}
        self.size: dict[int, int] = {}
        self.height: dict[int, int] = {}
        self.busy: set[int] = set()
        self.ctor = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, message: str) -> InputInvalid:
        return _problem(self.file, message, node.start_mark.line + 1)

    # ------------------------------------------------------------------ construction (and graph checks)
    def build(self, node: yaml.Node, depth: int = 1) -> Any:
        """The value of ``node``, refusing cycles, nesting over MAX_DEPTH and more than MAX_NODES
        values once aliases are expanded. Collections are memoised by node: linear in the
        *unexpanded* graph, and an alias shares its value (memory stays bounded whatever the
        aliases do)."""
        if node.__class__ is _Scalar:
            return node.value if node.tag == _STR else self.scalar(node)
        nid = id(node)
        if nid in self.memo:
            if depth + self.height[nid] - 1 > MAX_DEPTH:
                raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
            return self.memo[nid]
        if nid in self.busy:
            raise self.fail(node, "recursive alias (an anchor that contains itself)")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        self.busy.add(nid)
        total, height = 1, 0
        size_of, height_of = self.size, self.height
        if node.__class__ is _Sequence:
            if node.tag != _SEQ:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r} (only plain lists and mappings)")
            value: Any = []
            for item in node.value:
                if item.__class__ is _Scalar:
                    value.append(item.value if item.tag == _STR else self.scalar(item))
                    total += 1
                else:
                    value.append(self.build(item, depth + 1))
                    total += size_of[id(item)]
                    height = max(height, height_of[id(item)])
        else:
            if node.tag != _MAP:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r} (only plain lists and mappings)")
            assert isinstance(node, yaml.MappingNode)      # composed nodes are scalars, sequences or mappings
            value, total, height = self.mapping(node, depth)
        self.busy.discard(nid)
        if total > MAX_NODES:
            raise self.fail(node, f"too many values once aliases are expanded (more than {MAX_NODES:,}; "
                                  "an alias bomb?)")
        size_of[nid] = total
        height_of[nid] = height + 1
        self.memo[nid] = value
        return value

    def mapping(self, node: yaml.MappingNode, depth: int) -> tuple[dict, int, int]:
        own: set[int] | None = None               # keys written here (merged-in ones may be overridden)
        if any(k.tag == _MERGE for k, _ in node.value):
            own = {id(k) for k, _ in node.value}
            try:
                self.ctor.flatten_mapping(node)
            except yaml.MarkedYAMLError as exc:
                raise self.fail(node, f"bad merge key (<<): {exc.problem}") from None
        out: dict = {}
        first_line: dict = {}
        total, height = 1, 0
        size_of, height_of = self.size, self.height
        for k_node, v_node in node.value:
            if k_node.__class__ is not _Scalar:
                raise self.fail(k_node, "mapping keys must be plain names, not lists or mappings")
            key = k_node.value if k_node.tag == _STR else self.scalar(k_node)
            mine = own is None or id(k_node) in own
            if key in first_line and mine:
                raise self.fail(k_node, f"duplicate key {key!r} (first on line {first_line[key]}); "
                                        "each key may appear once")
            if mine:
                first_line[key] = k_node.start_mark.line + 1
            if v_node.__class__ is _Scalar:
                out[key] = v_node.value if v_node.tag == _STR else self.scalar(v_node)
                total += 2
            else:
                out[key] = self.build(v_node, depth + 1)
                total += 1 + size_of[id(v_node)]
                height = max(height, height_of[id(v_node)])
        return out, total, height

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        value = node.value
        if tag == _INT and value.isdigit() and (value[0] != "0" or value == "0") and len(value) < 19:
            return int(value)                     # plain decimal (YAML 1.1: a leading 0 is octal)
        if tag == _BOOL and value in _BOOLS:
            return _BOOLS[value]
        if tag == _INT:
            value = self.ctor.construct_yaml_int(node)
            if not -INT_LIMIT < value < INT_LIMIT:
                raise self.fail(node, f"integer out of range: {len(node.value)} characters long, beyond +/-2^63")
            return value
        if tag == _FLOAT:
            value = self.ctor.construct_yaml_float(node)
            if not math.isfinite(value):
                raise self.fail(node, f"expected a finite number, got {node.value!r}")
            return value
        if tag == _BOOL:
            return self.ctor.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        if tag == _TS:
            try:
                return self.ctor.construct_yaml_timestamp(node)
            except (ValueError, OverflowError) as exc:
                raise self.fail(node, f"not a valid date or time ({exc})") from None
        raise self.fail(node, f"unsupported YAML tag {tag!r} (only text, numbers, true/false, null, dates)")


def load_json(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> Any:
    """A JSON input file (a migration plan, compliance evidence) under the same rules: size, UTF-8,
    duplicate keys, no NaN/Infinity, nesting depth — InputInvalid (exit 2) with the line."""
    import json

    file = str(path)
    text = decode_text(read_bytes(file, max_bytes=max_bytes), file)

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"expected a finite number, got {name}")

    depth = max_depth = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):  # nesting outside strings, before
        ch = token.group()                                          # json's recursive decoder sees it
        if ch in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
        elif ch in "]}":
            depth -= 1
    if max_depth > MAX_DEPTH:
        raise _problem(file, f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _problem(file, f"not JSON: {exc.msg}", exc.lineno) from None
    except ValueError as exc:
        raise _problem(file, f"not accepted: {exc}") from None


def yaml_files(folder: str | os.PathLike, problems: list[Problem] | None = None) -> list[Path]:
    """The ``*.yaml``/``*.yml`` entries of ``folder``, sorted; a dangling or looping symlink, an
    unreadable folder or a ``.yaml`` that is not a regular file is a problem (recorded in
    ``problems``, or raised when ``problems`` is None), never silently skipped."""
    root = Path(folder)
    found: list[Path] = []
    local: list[Problem] = []
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        local.append(Problem(str(root), "", f"cannot list the directory: {exc.strerror or exc}"))
        entries = []
    for p in entries:
        if p.suffix not in (".yaml", ".yml"):
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            if exc.errno == 40:
                local.append(Problem(str(p), "", "symbolic link loop"))
            elif os.path.islink(p):
                local.append(Problem(str(p), "", f"dangling symbolic link (points to {os.readlink(p)!r}, "
                                                 "which does not exist)"))
            else:
                local.append(Problem(str(p), "", f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            local.append(Problem(str(p), "", "expected a YAML file, got a directory"))
            continue
        if not stat.S_ISREG(st.st_mode):
            local.append(Problem(str(p), "", "expected a regular YAML file, got a special file"))
            continue
        found.append(p)
    if local:
        if problems is None:
            raise InputInvalid(local)
        problems.extend(local)
    return found


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YamlDoc", "read_yaml", "load_yaml", "load_json", "parse_yaml",
           "read_bytes",
           "decode_text", "yaml_files"]
