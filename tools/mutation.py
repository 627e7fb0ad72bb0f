#!/usr/bin/env python3
"""Mutation testing of the pure core: does a unit test fail when the code is wrong?

A small AST mutation runner (``make mutation``; not part of ``make test``). For each
module in MODULES it lists every mutation site, draws a seeded sample, and runs each
mutant against the unit tests that import that module (``pytest -x -q``), in a forked
child whose import system serves the mutated source in place of the real file. The
working tree is never written. A mutant is *killed* when a test fails (or errors, or
runs past the timeout), *survives* when all pass. Mutants listed in
``tools/mutation_equivalent.yaml`` (each with its reason) are provably equivalent:
they are counted out of the score.

    score = killed / (sampled - equivalent)

Operators (one mutant per site and replacement):

* arithmetic ``+ - * / // % **`` (and augmented assignments) swapped for a neighbour;
* comparisons ``< <= > >= == != in not in is is not`` turned to their off-by-one or
  negated twin;
* ``and`` <-> ``or``; ``not x`` -> ``x``; ``-x`` -> ``x``;
* numbers ``n`` -> ``n + 1`` (not subscript indexes: ``u[2]`` -> ``u[3]`` only tests that Python
  raises IndexError); ``True`` <-> ``False``;
* ``min`` <-> ``max``, ``any`` <-> ``all``;
* ``break`` <-> ``continue``; a call used as a statement (``_improve(...)``) removed.

Strings, f-strings (messages), docstrings and annotations are not mutated.

Usage::

    python tools/mutation.py                      # every module, the default sample
    python tools/mutation.py -m placement -n 0    # all of placement's mutants
    python tools/mutation.py --list -m billing    # the sites, no runs
"""
from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.util
import json
import os
import random
import re
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "tests" / "unit"
EQUIVALENT_FILE = ROOT / "tools" / "mutation_equivalent.yaml"
OUT = ROOT / "build" / "mutation"

# module -> mutants drawn per run (0 = every site). The five modules have about 1,000 sites in
# all, so the default runs every one; -n N draws a seeded sample of N per module instead.
MODULES = {
    "placement": 0,
    "billing": 0,
    "lifecycle": 0,
    "sla": 0,
    "headroom": 0,
}
SEED = 16

_BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
           ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
           ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr}
_CMPOPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_SYM = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
        ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&", ast.Lt: "<", ast.LtE: "<=",
        ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in",
        ast.Is: "is", ast.IsNot: "is not", ast.And: "and", ast.Or: "or"}
_CALLS = {"min": "max", "max": "min", "any": "all", "all": "any"}


@dataclass
class Mutant:
    module: str
    index: int            # position in the module's site list (this source version)
    line: int
    key: str              # stable across line moves: function, operator, source text, occurrence
    status: str = ""      # killed | survived | timeout | equivalent
    seconds: float = 0.0
    why: str = ""


# --------------------------------------------------------------------------- sites
def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _walk(tree: ast.AST):
    """(node, function qualname) in a fixed order, skipping what is not mutated."""
    def visit(node, qual, parent=None):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qual = f"{qual}.{node.name}" if qual else node.name
        if isinstance(node, ast.JoinedStr):
            return                                        # messages
        if isinstance(node, ast.ImportFrom) or isinstance(node, ast.Import):
            return
        yield node, qual, parent
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module, ast.AsyncFunctionDef)) and name == "body" \
                    and value and isinstance(value[0], ast.Expr) and _is_str(value[0].value):
                value = value[1:]                         # docstring
            if isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.AST):
                        yield from visit(v, qual, node)
            elif isinstance(value, ast.AST):
                yield from visit(value, qual, node)
    yield from visit(tree, "")


def _candidates(node: ast.AST, parent: ast.AST | None) -> list[tuple[str, object]]:
    """(label, how) for each mutation of ``node`` itself; ``how`` is applied to a copy."""
    out: list[tuple[str, object]] = []
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS and not (_is_str(node.left) or _is_str(node.right)):
        new = _BINOPS[type(node.op)]
        out.append((f"{_SYM[type(node.op)]} -> {_SYM[new]}", ("binop", new)))
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOPS and not _is_str(node.value):
        new = _BINOPS[type(node.op)]
        out.append((f"{_SYM[type(node.op)]}= -> {_SYM[new]}=", ("binop", new)))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _CMPOPS:
                new = _CMPOPS[type(op)]
                out.append((f"{_SYM[type(op)]} -> {_SYM[new]}", ("cmp", i, new)))
    elif isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        out.append((f"{_SYM[type(node.op)]} -> {_SYM[new]}", ("boolop", new)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        out.append(("not x -> x" if isinstance(node.op, ast.Not) else "-x -> x", ("unary",)))
    elif isinstance(node, ast.Constant) and not (isinstance(parent, ast.Subscript) and parent.slice is node):
        v = node.value
        if isinstance(v, bool):
            out.append((f"{v} -> {not v}", ("const", not v)))
        elif isinstance(v, (int, float)) and not isinstance(v, complex):
            out.append((f"{v!r} -> {v + 1!r}", ("const", v + 1)))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS:
        out.append((f"{node.func.id} -> {_CALLS[node.func.id]}", ("call", _CALLS[node.func.id])))
    elif isinstance(node, ast.Break):
        out.append(("break -> continue", ("stmt", ast.Continue)))
    elif isinstance(node, ast.Continue):
        out.append(("continue -> break", ("stmt", ast.Break)))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        out.append(("call statement removed", ("stmt", ast.Pass)))
    return out


def _apply(node: ast.AST, how) -> ast.AST:
    """Mutate ``node`` (a node of a copied tree) in place, or return its replacement."""
    kind = how[0]
    if kind == "binop":
        node.op = how[1]()
    elif kind == "cmp":
        node.ops[how[1]] = how[2]()
    elif kind == "boolop":
        node.op = how[1]()
    elif kind == "unary":
        return node.operand
    elif kind == "const":
        node.value = how[1]
    elif kind == "call":
        node.func = ast.Name(id=how[1], ctx=ast.Load())
    elif kind == "stmt":
        return ast.copy_location(how[1](), node)
    return node


@dataclass
class Module:
    name: str
    path: Path
    source: str
    tree: ast.AST
    sites: list = field(default_factory=list)     # (node index in walk order, label, how, line, key)


def load_module(name: str) -> Module:
    path = ROOT / "yunshang" / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, str(path))
    mod = Module(name, path, source, tree)
    seen: dict[str, int] = {}
    for pos, (node, qual, parent) in enumerate(_walk(tree)):
        for label, how in _candidates(node, parent):
            shown = node
            if isinstance(node, ast.Constant) and isinstance(parent, ast.expr):
                shown = parent                            # a number means something in its expression
            text = ast.get_source_segment(source, shown) or ast.unparse(shown)
            text = re.sub(r"\s+", " ", text)
            if len(text) > 60:
                text = text[:57] + "..."
            base = f"{qual or '<module>'}: {label} `{text}`"
            n = seen.get(base, 0)
            seen[base] = n + 1
            mod.sites.append((pos, label, how, node.lineno, f"{base} #{n}" if n else base))
    return mod


def mutated_code(mod: Module, site: int):
    pos, _, how, _, _ = mod.sites[site]
    tree = copy.deepcopy(mod.tree)
    target = None
    for i, (node, _, _) in enumerate(_walk(tree)):
        if i == pos:
            target = node
            break
    assert target is not None
    new = _apply(target, how)
    if new is not target:
        _replace(tree, target, new)
    ast.fix_missing_locations(tree)
    return compile(tree, str(mod.path), "exec")


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return
    raise AssertionError("node not found")


# --------------------------------------------------------------------------- tests per module
def test_files(name: str) -> list[Path]:
    """Unit test files that import ``yunshang.<name>`` themselves."""
    out = []
    for f in sorted(UNIT.glob("test_*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == f"yunshang.{name}":
                out.append(f)
                break
            if isinstance(node, ast.ImportFrom) and node.module == "yunshang" and any(
                    a.name == name for a in node.names):
                out.append(f)
                break
            if isinstance(node, ast.Import) and any(a.name == f"yunshang.{name}" for a in node.names):
                out.append(f)
                break
    return out


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated code object for one module name."""

    def __init__(self, fullname: str, code, path: Path):
        self.fullname, self.code, self.path = fullname, code, path

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.fullname:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.path))

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__file__ = str(self.path)
        exec(self.code, module.__dict__)


def _child(name: str, code, path: Path, files: list[Path]) -> None:
    """In the forked child: install the mutant, run pytest quietly, exit with its status."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        if code is not None:
            sys.meta_path.insert(0, _Finder(f"yunshang.{name}", code, path))
        import pytest
        rc = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-profile=mutation",
                          *map(str, files)])
        os._exit(int(rc))
    except BaseException:          # noqa: BLE001 - any failure of the child is a failed run
        os._exit(99)


def run_once(name: str, code, path: Path, files: list[Path], timeout: float) -> tuple[str, float]:
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(name, code, path, files)
    deadline = t0 + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - t0
        select.select([], [], [], 0.02)
    rc = os.waitstatus_to_exitcode(status)
    return ("survived" if rc == 0 else "killed"), time.monotonic() - t0


def _prepare_parent() -> None:
    """Import the heavy third-party modules once (the children inherit them); never yunshang."""
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import hypothesis
    import pytest  # noqa: F401
    import yaml  # noqa: F401
    import jinja2  # noqa: F401
    hypothesis.settings.register_profile(
        "mutation", database=None, derandomize=True, deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck))
    assert not any(m == "yunshang" or m.startswith("yunshang.") for m in sys.modules)


def load_equivalent() -> dict[str, dict[str, str]]:
    if not EQUIVALENT_FILE.exists():
        return {}
    import yaml
    data = yaml.safe_load(EQUIVALENT_FILE.read_text(encoding="utf-8")) or {}
    return {m: {e["key"]: e["why"] for e in (entries or [])} for m, entries in data.items()}


def sample(mod: Module, n: int, seed: int) -> list[int]:
    idx = list(range(len(mod.sites)))
    if n <= 0 or n >= len(idx):
        return idx
    rng = random.Random(f"{seed}:{mod.name}")
    return sorted(rng.sample(idx, n))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--module", action="append", choices=list(MODULES), help="only these modules")
    ap.add_argument("-n", "--sample", type=int, default=None, help="mutants per module (0 = all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--list", action="store_true", help="list the sampled sites, run nothing")
    ap.add_argument("--all-survivors", action="store_true", help="print every survivor (default: up to 60)")
    args = ap.parse_args(argv)
    names = args.module or list(MODULES)
    equivalent = load_equivalent()

    if args.list:
        for name in names:
            mod = load_module(name)
            for i in sample(mod, MODULES[name] if args.sample is None else args.sample, args.seed):
                print(f"{name}:{mod.sites[i][3]}: {mod.sites[i][4]}")
        return 0

    _prepare_parent()
    OUT.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in names:
        mod = load_module(name)
        files = test_files(name) + sorted(UNIT.glob(f"test_{name}_pinned*.py"))
        files = sorted(set(files))
        status, base_s = run_once(name, None, mod.path, files, 600)
        if status != "survived":
            print(f"{name}: the unmutated tests fail ({', '.join(f.name for f in files)}); fix them first",
                  file=sys.stderr)
            return 1
        timeout = max(20.0, 5 * base_s)
        chosen = sample(mod, MODULES[name] if args.sample is None else args.sample, args.seed)
        eq = equivalent.get(name, {})
        results: list[Mutant] = []
        t0 = time.monotonic()
        for k, i in enumerate(chosen):
            _, _, _, line, key = mod.sites[i]
            m = Mutant(name, i, line, key)
            if key in eq:
                m.status, m.why = "equivalent", eq[key]
            else:
                m.status, m.seconds = run_once(name, mutated_code(mod, i), mod.path, files, timeout)
            results.append(m)
            if sys.stderr.isatty():
                print(f"\r{name}: {k + 1}/{len(chosen)}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print("\r", end="", file=sys.stderr)
        counts = {s: sum(1 for m in results if m.status == s) for s in ("killed", "timeout", "survived", "equivalent")}
        scored = len(results) - counts["equivalent"]
        score = (counts["killed"] + counts["timeout"]) / scored if scored else 1.0
        stale = sorted(set(eq) - {s[4] for s in mod.sites})
        summary.append({"module": name, "sites": len(mod.sites), "sampled": len(results), **counts,
                        "score": round(score, 4), "tests": [f.name for f in files],
                        "baseline_s": round(base_s, 2), "run_s": round(time.monotonic() - t0, 1),
                        "stale_equivalent_keys": stale})
        (OUT / f"{name}.json").write_text(json.dumps(
            {"summary": summary[-1], "mutants": [m.__dict__ for m in results]}, indent=1, ensure_ascii=False))
        surv = [m for m in results if m.status == "survived"]
        print(f"{name}: {score:.1%} killed of {scored} ({counts['killed']} killed, {counts['timeout']} timeout, "
              f"{counts['survived']} survived, {counts['equivalent']} equivalent counted out; "
              f"{len(mod.sites)} sites; tests: {', '.join(f.name for f in files)})")
        for m in surv if args.all_survivors else surv[:60]:
            print(f"  survived  yunshang/{name}.py:{m.line}  {m.key}")
        for key in stale:
            print(f"  note: equivalent entry no longer matches a site: {key}")
    print()
    print(f"{'module':<10} {'sites':>6} {'sampled':>8} {'killed':>7} {'timeout':>8} {'survived':>9} "
          f"{'equiv.':>7} {'score':>7}")
    for s in summary:
        print(f"{s['module']:<10} {s['sites']:>6} {s['sampled']:>8} {s['killed']:>7} {s['timeout']:>8} "
              f"{s['survived']:>9} {s['equivalent']:>7} {s['score']:>7.1%}")
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
