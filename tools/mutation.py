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

# module -> (mutants drawn per run, 0 = every site; the module's unit test files). placement and
# billing have more sites than a run on this shared 2-core machine affords: a seeded sample of
# them (--sample 0 for all). The test files are the module's own (named for it), fast and pure:
# tests that drive the commands or the Pulumi engine are not among them.
MODULES = {
    "placement": (150, ("test_placement*.py",)),
    "billing": (120, ("test_billing*.py",)),
    "lifecycle": (0, ("test_lifecycle*.py",)),
    "sla": (0, ("test_sla*.py", "test_billing.py")),
    "headroom": (0, ("test_exporter_math.py",)),
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
    """The module's unit test files (see MODULES)."""
    return sorted({f for pattern in MODULES[name][1] for f in UNIT.glob(pattern)})


def _site_node(mod: Module, site: int) -> ast.AST:
    """The node the site mutates (its position in the module's walk)."""
    pos = mod.sites[site][0]
    return next(node for i, (node, _, _) in enumerate(_walk(mod.tree)) if i == pos)


def _top_statement(mod: Module, site: int) -> ast.stmt:
    """The module-level statement that holds the site."""
    node = _site_node(mod, site)
    for stmt in mod.tree.body:
        if any(n is node for n in ast.walk(stmt)):
            return stmt
    raise AssertionError("site outside the module body")


def _function_of(obj):
    if isinstance(obj, property):
        return obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    return obj


def _swap(old, new) -> None:
    """Give the function object ``old`` (held by tests and other modules) the mutated body."""
    old, new = _function_of(old), _function_of(new)
    old.__code__ = new.__code__
    old.__defaults__ = new.__defaults__
    old.__kwdefaults__ = new.__kwdefaults__


def install(module, mod: Module, site: int, code) -> None:
    """Make the already imported ``module`` behave as the mutant.

    Functions are changed in place (their ``__code__``), so every reference a test or another
    module holds runs the mutated body; a mutated module-level value or class attribute is
    rebound in the module (a copy imported by name elsewhere keeps the original).
    """
    ns = {"__name__": module.__name__, "__file__": module.__file__, "__package__": module.__package__,
          "__builtins__": __builtins__}
    exec(code, ns)
    stmt = _top_statement(mod, site)
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        _swap(module.__dict__[stmt.name], ns[stmt.name])
        return
    if isinstance(stmt, ast.ClassDef):
        node = _site_node(mod, site)
        for member in stmt.body:
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(n is node for n in ast.walk(member)) \
                    and not any(n is node for d in member.decorator_list for n in ast.walk(d)):
                _swap(module.__dict__[stmt.name].__dict__[member.name], ns[stmt.name].__dict__[member.name])
                return
        module.__dict__[stmt.name] = ns[stmt.name]
        # values built from the class at import (e.g. a table of its instances) are rebuilt too
        later = mod.tree.body[mod.tree.body.index(stmt) + 1:]
        for name in _assigned_names(later):
            module.__dict__[name] = ns[name]
        return
    for name in _assigned_names([stmt]):
        module.__dict__[name] = ns[name]


def _assigned_names(stmts: list[ast.stmt]) -> set[str]:
    """Names bound by module-level assignments among ``stmts`` (not defs, classes or imports)."""
    return {t.id for stmt in stmts if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            for n in ast.walk(stmt) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            for target in (n.targets if isinstance(n, ast.Assign) else [n.target]) for t in ast.walk(target)
            if isinstance(t, ast.Name)}


class _Runner:
    """A pytest plugin: after collecting once, run the tests against each mutant in a forked child."""

    def __init__(self, mod: Module, chosen: list[int], equivalent: dict[str, str], out: list):
        self.mod, self.chosen, self.equivalent, self.out = mod, chosen, equivalent, out
        self.baseline_s = 0.0
        self.durations: list[float] = []

    def _fork(self, items, order, site, timeout):
        """('killed' | 'survived' | 'timeout', seconds, index of the failing item or -1)."""
        import _pytest.runner

        r, w = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                if site is not None:
                    install(sys.modules[f"yunshang.{self.mod.name}"], self.mod, site, mutated_code(self.mod, site))
                spent = []
                for k in order:
                    t = time.monotonic()
                    reports = _pytest.runner.runtestprotocol(items[k], nextitem=None, log=False)
                    spent.append(time.monotonic() - t)
                    if any(rep.failed for rep in reports):
                        os.write(w, str(k).encode())
                        os._exit(1)
                if site is None:                      # the baseline reports each test's duration
                    os.write(w, json.dumps(spent).encode())
                os._exit(0)
            except BaseException:      # noqa: BLE001 - a mutant that breaks the import is killed
                os._exit(2)
        os.close(w)
        deadline = t0 + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(r)
                return "timeout", time.monotonic() - t0, -1
            select.select([r], [], [], 0.05)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        rc = os.waitstatus_to_exitcode(status)
        if rc == 0 and site is None:
            self.durations = json.loads(data or b"[]")
            return "survived", time.monotonic() - t0, -1
        return ("survived" if rc == 0 else "killed"), time.monotonic() - t0, int(data) if data else -1

    def pytest_runtestloop(self, session):
        items = session.items
        order = list(range(len(items)))
        status, base, failed = self._fork(items, order, None, 900)
        if status != "survived":
            which = items[failed].nodeid if failed >= 0 else "(collection)"
            raise SystemExit(f"{self.mod.name}: the unmutated tests fail ({which}); fix them first")
        self.baseline_s = base
        timeout = max(30.0, 10 * base)
        kills = [0] * len(items)
        for n, i in enumerate(self.chosen):
            _, _, _, line, key = self.mod.sites[i]
            m = Mutant(self.mod.name, i, line, key)
            if key in self.equivalent:
                m.status, m.why = "equivalent", self.equivalent[key]
            else:
                # the tests that killed most mutants per second of their run first
                order.sort(key=lambda k: (-(kills[k] + 0.1) / (self.durations[k] + 0.001), k))
                m.status, m.seconds, failed = self._fork(items, order, i, timeout)
                if failed >= 0:
                    kills[failed] += 1
                    m.why = items[failed].nodeid
            self.out.append(m)
            (OUT / f"{self.mod.name}.progress").write_text(f"{n + 1}/{len(self.chosen)} line {line}\n")
            if m.status == "survived" and VERBOSE:
                print(f"  survived  yunshang/{self.mod.name}.py:{m.line}  {m.key}", file=sys.__stderr__, flush=True)
            if sys.__stderr__.isatty():
                print(f"\r{self.mod.name}: {n + 1}/{len(self.chosen)}", end="", file=sys.__stderr__, flush=True)
        if sys.__stderr__.isatty():
            print("\r", end="", file=sys.__stderr__)
        return True


VERBOSE = False


def run_module(name: str, n: int, seed: int, equivalent: dict[str, str], baseline: bool = False
               ) -> tuple[Module, list, float, list]:
    import hypothesis
    import pytest

    hypothesis.settings.register_profile(
        "mutation", database=None, derandomize=True, deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])     # a failure is enough: no shrinking
    mod = load_module(name)
    files = test_files(name)
    if baseline:                        # the score before the pinned tests were written
        files = [f for f in files if "_pinned" not in f.name]
    chosen = sample(mod, n, seed)
    out: list[Mutant] = []
    runner = _Runner(mod, chosen, equivalent, out)
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "--hypothesis-profile=mutation", "--no-header",
                      *map(str, files)], plugins=[runner])
    if len(out) != len(chosen):
        raise SystemExit(f"{name}: pytest stopped early (exit {rc})")
    return mod, out, runner.baseline_s, files


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
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--module", action="append", choices=list(MODULES), help="only these modules")
    ap.add_argument("-n", "--sample", type=int, default=None, help="mutants per module (0 = all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--list", action="store_true", help="list the sampled sites, run nothing")
    ap.add_argument("--all-survivors", action="store_true", help="print every survivor (default: up to 60)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each survivor as soon as it is found")
    ap.add_argument("--baseline", action="store_true", help="without the tests/unit/test_*_pinned*.py files")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    VERBOSE = args.verbose
    names = args.module or list(MODULES)
    equivalent = load_equivalent()
    os.chdir(ROOT)

    if args.list:
        for name in names:
            mod = load_module(name)
            for i in sample(mod, MODULES[name][0] if args.sample is None else args.sample, args.seed):
                print(f"{name}:{mod.sites[i][3]}: {mod.sites[i][4]}")
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    if args.worker:                     # one module in a fresh interpreter (see below)
        name = args.worker
        t0 = time.monotonic()
        mod, results, base_s, files = run_module(name, MODULES[name][0] if args.sample is None else args.sample,
                                                 args.seed, equivalent.get(name, {}), args.baseline)
        eq = equivalent.get(name, {})
        counts = {s: sum(1 for m in results if m.status == s) for s in ("killed", "timeout", "survived", "equivalent")}
        scored = len(results) - counts["equivalent"]
        score = (counts["killed"] + counts["timeout"]) / scored if scored else 1.0
        stale = sorted(set(eq) - {s[4] for s in mod.sites})
        summary = {"module": name, "sites": len(mod.sites), "sampled": len(results), **counts,
                   "score": round(score, 4), "tests": [f.name for f in files],
                   "baseline_s": round(base_s, 2), "run_s": round(time.monotonic() - t0, 1),
                   "stale_equivalent_keys": stale}
        (OUT / f"{name}.json").write_text(json.dumps(
            {"summary": summary, "mutants": [m.__dict__ for m in results]}, indent=1, ensure_ascii=False))
        return 0

    summary = []
    for name in names:
        import subprocess
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--seed", str(args.seed)]
        if args.sample is not None:
            cmd += ["-n", str(args.sample)]
        if args.verbose:
            cmd += ["-v"]
        if args.baseline:
            cmd += ["--baseline"]
        if subprocess.call(cmd, stdout=subprocess.DEVNULL) != 0:
            print(f"{name}: the run failed", file=sys.stderr)
            return 1
        data = json.loads((OUT / f"{name}.json").read_text(encoding="utf-8"))
        s, results = data["summary"], data["mutants"]
        summary.append(s)
        scored = s["sampled"] - s["equivalent"]
        print(f"{name}: {s['score']:.1%} killed of {scored} ({s['killed']} killed, {s['timeout']} timeout, "
              f"{s['survived']} survived, {s['equivalent']} equivalent counted out; {s['sites']} sites; "
              f"tests: {', '.join(s['tests'])}; {s['run_s']:.0f} s)")
        surv = [m for m in results if m["status"] == "survived"]
        for m in surv if args.all_survivors else surv[:60]:
            print(f"  survived  yunshang/{name}.py:{m['line']}  {m['key']}")
        if len(surv) > 60 and not args.all_survivors:
            print(f"  ... {len(surv) - 60} more (--all-survivors; build/mutation/{name}.json)")
        for key in s["stale_equivalent_keys"]:
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
