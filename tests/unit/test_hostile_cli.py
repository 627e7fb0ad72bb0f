"""Hostile input across commands: each case is a clear refusal — the documented exit code, a short
message naming the file/field (or the option), no traceback, nothing written.

Table-driven through click's CliRunner (fast), and a few through the real entry point as a
subprocess (what a user sees: stderr, exit status, time)."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from catalog_fixtures import DEPARTMENT, PROVIDERS, TEMPLATE, write_catalog
from cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
YUNSHANG = str(Path(sys.executable).with_name("yunshang"))


def _bomb() -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + dirnames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


# ----------------------------------------------------------------------------- catalog mutations
def _providers(mutate):
    p = copy.deepcopy(PROVIDERS)
    mutate(p)
    return p


def _dept(mutate):
    d = copy.deepcopy(DEPARTMENT)
    mutate(d)
    return d


def _set(path, value):
    def go(doc):
        cur = doc
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = value
    return go


CATALOG_CASES = [
    # (id, providers, department, raw files {relative path: text}, words in the message)
    ("inf price", _providers(_set(("providers", 0, "prices", "vcpu"), float("inf"))), None, {},
     "providers.yaml:"),
    ("nan ceiling", None, _dept(_set(("contracts", 0, "ceiling_cny_per_month"), float("nan"))), {}, "health.yaml:"),
    ("1e308 overcommit", _providers(_set(("providers", 0, "zones", 0, "overcommit", "vcpu"), 1e308)), None, {},
     "overcommit.vcpu: expected a number from 1 to 64"),
    ("huge count", None, _dept(_set(("requests", 0, "count"), 10 ** 12)), {}, "requests[0].count"),
    ("int beyond 2^63", None, None, {"departments/big.yaml": "name: big\nmlps_level: 99999999999999999999999\n"},
     "big.yaml:2: integer out of range"),
    ("name with a newline", None, _dept(_set(("requests", 0, "name"), "treasury-db\n")), {},
     "requests[0].name: expected a name"),
    ("name with trailing space", None, _dept(_set(("requests", 0, "name"), "his ")), {}, "requests[0].name"),
    ("contract id with newline", None, _dept(_set(("contracts", 0, "id"), "WJ-1\n")), {}, "contracts[0].id"),
    ("display name with control char", None, _dept(_set(("display_name",), "卫健委\x1b[31m")), {}, "display_name"),
    ("e-mail with newline", None, _dept(_set(("users", 0, "email"), "wj@example.cn\nBcc: x@y.z")), {}, "email"),
    ("date far out", None, _dept(_set(("contracts", 0, "end"), "9999-12-31")), {}, "contracts[0].end"),
    ("duplicate key", None, None, {"departments/dup.yaml": "name: dup\nmlps_level: 3\nname: other\n"},
     "dup.yaml:3: duplicate key 'name'"),
    ("alias bomb", None, None, {"departments/bomb.yaml": _bomb()}, "bomb.yaml:7:"),
    ("recursive alias", None, None, {"departments/rec.yaml": "name: &a [*a]\n"}, "rec.yaml:1: recursive alias"),
    ("deep nesting", None, None, {"departments/deep.yaml": "name: " + "[" * 200 + "]" * 200 + "\n"},
     "deep.yaml:1: nested deeper"),
    ("NUL byte", None, None, {"departments/nul.yaml": "name: nul\x00\n"}, "nul.yaml:1: NUL byte"),
    ("python tag", None, None, {"departments/tag.yaml": "name: !!python/object/apply:os.system [id]\n"},
     "tag.yaml:1: unsupported YAML tag"),
    ("template code", None, None,
     {"templates/evil.yaml": "name: evil\nsizes: {s: {vcpu: 1, ram_gb: 1, disk_gb: 1}}\nuser_data: |\n"
                             "  {{ cycler.__init__.__globals__.os.popen('id').read() }}\n"},
     "evil.yaml:4: user_data"),
]


@pytest.mark.parametrize("command", [["catalog", "validate"], ["plan", "--date", "2026-11-26"],
                                     ["catalog", "show"]], ids=["validate", "plan", "show"])
@pytest.mark.parametrize("case", CATALOG_CASES, ids=[c[0] for c in CATALOG_CASES])
def test_hostile_catalog_is_refused_by_every_command_that_reads_it(tmp_path, command, case):
    _, providers, department, raw, words = case
    root = write_catalog(tmp_path / "cat", providers=providers, departments=None if department is None else [department])
    for rel, text in raw.items():
        (root / rel).write_bytes(text.encode("utf-8"))
    before = _snapshot(tmp_path)
    t = time.monotonic()
    r = CliRunner().invoke(cli, command + ["--catalog", str(root)])
    assert time.monotonic() - t < 20
    assert r.exit_code == 2, (r.exit_code, r.output)
    err = r.stderr if r.stderr_bytes is not None else r.output
    assert words in err, err
    assert "Traceback" not in r.output and "Traceback" not in err
    assert err.startswith("error: catalog invalid: "), err
    assert _snapshot(tmp_path) == before
    assert r.stdout == ""


def test_dangling_and_looping_symlinks_are_errors_not_missing_departments(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "departments" / "treasury.yaml").symlink_to(tmp_path / "gone.yaml")
    (root / "departments" / "loop.yaml").symlink_to(root / "departments" / "loop.yaml")
    r = CliRunner().invoke(cli, ["plan", "--catalog", str(root)])
    assert r.exit_code == 2
    assert "treasury.yaml: dangling symbolic link" in r.stderr and "loop.yaml: symbolic link loop" in r.stderr


# ----------------------------------------------------------------------------- arguments
def _args_cases(tmp: Path, cat: str) -> list[tuple[str, list[str], int, str]]:
    missing = str(tmp / "no-such-dir" / "x")
    return [
        ("month 13", ["plan", "--catalog", cat, "--date", "2026-13-01"], 2, "--date"),
        ("day 0", ["plan", "--catalog", cat, "--date", "2026-11-00"], 2, "--date"),
        ("year 9999", ["plan", "--catalog", cat, "--date", "9999-12-31"], 2, "out of range"),
        ("year 1", ["stack", "render", "health", "--catalog", cat, "--date", "0001-01-01"], 2, "out of range"),
        ("bill month 13", ["bill", "--month", "2026-13", "--catalog", cat], 2, "--month"),
        ("bill month 00", ["bill", "--month", "2026-00", "--catalog", cat], 2, "--month"),
        ("bill --at year 9999", ["bill", "--month", "2026-11", "--catalog", cat, "--at", "9999-01-01"], 2,
         "out of range"),
        ("id beyond 2^63", ["request", "show", str(2 ** 63)], 2, "REQUEST_ID"),
        ("id zero", ["request", "show", "0"], 2, "REQUEST_ID"),
        ("id negative", ["request", "log", "--request", "-5"], 2, "--request"),
        ("cidr with host bits", ["stack", "render", "health", "--catalog", cat, "--management-cidr", "10.0.0.1/24"],
         2, "--management-cidr"),
        ("cidr garbage", ["stack", "graph", "health", "--catalog", cat, "--management-cidr", "nope"], 2,
         "--management-cidr"),
        ("out in a missing dir", ["compliance", "check", "--catalog", cat, "--out", missing], 2, "does not exist"),
        ("bill out in a missing dir", ["bill", "--month", "2026-11", "--catalog", cat, "--out", missing], 2,
         "does not exist"),
        ("stack dir in a missing dir", ["stack", "render", "health", "--catalog", cat, "--dir", missing], 2,
         "does not exist"),
        ("adopt out in a missing dir", ["tenant", "adopt", "--operator", "telecom", "--project", "p",
                                        "--catalog", cat, "--out", missing], 2, "does not exist"),
        ("inventory out is a directory", ["migrate", "survey", str(tmp / "s.csv"), "--inventory-out", str(tmp)], 2,
         "is a directory"),
        ("terminated unknown contract", ["takeover", "plan", "--operator", "telecom", "--catalog", cat,
                                         "--terminated", "NOPE-1"], 2, "--terminated"),
        ("unknown operator", ["takeover", "plan", "--operator", "nope", "--catalog", cat], 2, "nope"),
        ("unknown department", ["stack", "render", "nope", "--catalog", cat], 2, "nope"),
        ("prometheus not http", ["bill", "--month", "2026-11", "--catalog", cat, "--prometheus", "ftp://x"], 2,
         "--prometheus"),
        ("prometheus garbage", ["takeover", "plan", "--operator", "telecom", "--catalog", cat, "--prometheus",
                                "notaurl"], 2, "--prometheus"),
        ("prometheus bad port, password masked", ["bill", "--month", "2026-11", "--catalog", cat, "--prometheus",
                                                  "http://u:CANARYPW@h:99999"], 2, "u:***@h"),
    ]


ARG_IDS = [c[0] for c in _args_cases(Path("/x"), "/x")]


@pytest.mark.parametrize("index", range(len(ARG_IDS)), ids=ARG_IDS)
def test_hostile_arguments_are_one_line_with_the_exit_code(tmp_path, index, monkeypatch):
    monkeypatch.setenv("YUNSHANG_DB", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cat = str(write_catalog(tmp_path / "cat"))
    (tmp_path / "s.csv").write_text("hostname,address,ssh_user,department,operator\n")
    _, args, code, words = _args_cases(tmp_path, cat)[index]
    before = _snapshot(tmp_path)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == code, (r.exit_code, r.output)
    err = r.stderr if r.stderr_bytes is not None else r.output
    assert words in err, err
    assert "Traceback" not in err and "CANARYPW" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) <= 2, err                   # one line (a problem list adds the problem itself)
    assert _snapshot(tmp_path) == before, "something was written"


# ----------------------------------------------------------------------------- documents and files
def test_request_document_with_a_second_department_is_refused_not_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("YUNSHANG_DB", f"sqlite:///{tmp_path / 'store.db'}")
    cat = str(write_catalog(tmp_path / "cat"))
    doc = tmp_path / "req.yaml"
    doc.write_text("department: health\ntitle: t\nrequests: []\ndepartment: treasury\n")
    r = CliRunner().invoke(cli, ["request", "submit", str(doc), "--catalog", cat, "--os-cloud", "nobody"])
    assert r.exit_code == 2
    assert f"{doc}:4: duplicate key 'department' (first on line 1)" in r.stderr


def test_a_refused_request_step_creates_no_store(tmp_path, monkeypatch):
    """A bad document, an unknown identity or a request that is not there: refused, and no SQLite file."""
    db = tmp_path / "new" / "store.db"
    monkeypatch.setenv("YUNSHANG_DB", f"sqlite:///{db}")
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    cat = str(write_catalog(tmp_path / "cat"))
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text("department: health\ntitle: t\nrequests: []\ndepartment: treasury\n")
    good.write_text("department: health\ntitle: t\nrequests: [{name: web, template: web, size: small, count: 1}]\n")
    for argv, code in ((["submit", str(bad)], 2), (["submit", str(good)], 4), (["endorse", "1"], 4)):
        r = CliRunner().invoke(cli, ["request", *argv, "--catalog", cat, "--os-cloud", "person-nobody"])
        assert r.exit_code == code, (argv, r.output)
        assert not db.exists() and not db.parent.exists(), f"{argv}: the store was created by a refused command"


def test_bad_clouds_yaml_is_refused_before_any_operator_is_contacted(tmp_path):
    cat = str(write_catalog(tmp_path / "cat"))
    clouds = tmp_path / "clouds.yaml"
    for text, words in ((_bomb(), "alias"), ("clouds:\n  telecom: {}\n  telecom: {}\n", "duplicate key 'telecom'"),
                        ("clouds: \x00\n", "NUL")):
        clouds.write_text(text)
        r = CliRunner().invoke(cli, ["capacity", "show", "--catalog", cat, "--clouds", str(clouds)])
        assert r.exit_code == 2, r.output
        assert str(clouds) in r.stderr and words in r.stderr


def test_survey_hostile_files(tmp_path):
    for name, data, words in (("s.yaml", _bomb().encode(), "alias"), ("s.csv", b"hostname\n\xff\xfe\n", "UTF-8"),
                              ("s.yaml", b"hosts:\n  - {hostname: a, hostname: b}\n", "duplicate key")):
        f = tmp_path / name
        f.write_bytes(data)
        r = CliRunner().invoke(cli, ["migrate", "survey", str(f)])
        assert r.exit_code == 2, r.output
        assert str(f) in r.stderr and words in r.stderr


def test_store_naming_a_department_the_catalog_no_longer_has(tmp_path, monkeypatch):
    """A record whose department left the catalog: one line, exit 2 (UnknownName), not a KeyError."""
    from yunshang.catalog import load_catalog
    from yunshang.errors import NotFound, UnknownName

    cat = load_catalog(write_catalog(tmp_path / "cat"))
    with pytest.raises(UnknownName) as exc:
        cat.department("treasury")
    assert isinstance(exc.value, NotFound) and isinstance(exc.value, KeyError)
    assert exc.value.exit_code == 2
    assert str(exc.value) == "unknown department 'treasury' (the catalog has: health)"


# ----------------------------------------------------------------------------- the last resort
def test_unexpected_exception_is_one_line_exit_1_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    import yunshang.placement as placement

    def boom(*a, **k):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(placement, "place_explained", boom)
    cat = str(write_catalog(tmp_path / "cat"))
    r = CliRunner().invoke(cli, ["plan", "--catalog", cat])
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: unexpected ZeroDivisionError in yunshang plan: float division by zero "
                                "(this is a bug in yunshang; run again with --debug for the traceback)")
    r = CliRunner().invoke(cli, ["--debug", "plan", "--catalog", cat])
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr and "boom" in r.stderr


def _run(args, timeout=60, env=None):
    return subprocess.run([YUNSHANG, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_subprocess_alias_bomb_and_template_code_refused_quickly(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "departments" / "bomb.yaml").write_text(_bomb())
    t = time.monotonic()
    r = _run(["plan", "--catalog", str(root)])
    assert time.monotonic() - t < 30
    assert r.returncode == 2 and r.stdout == ""
    assert "bomb.yaml:7:" in r.stderr and "Traceback" not in r.stderr
    (root / "departments" / "bomb.yaml").unlink()
    tpl = copy.deepcopy(TEMPLATE)
    tpl["user_data"] = "{{ cycler.__init__.__globals__.os.popen('touch " + str(tmp_path / "pwned") + "').read() }}"
    (root / "templates" / "web.yaml").write_text(yaml.safe_dump(tpl))
    r = _run(["stack", "render", "health", "--catalog", str(root), "--dir", str(tmp_path / "out")])
    assert r.returncode == 2, r.stderr
    assert "web.yaml" in r.stderr and "user_data" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_subprocess_unexpected_error_is_one_line_and_debug_env_shows_traceback(tmp_path):
    code = ("import sys, yunshang.placement as p\n"
            "def boom(*a, **k): raise RuntimeError('boom')\n"
            "p.place_explained = boom\n"
            "from cli.main import main\n"
            "sys.argv[0] = 'yunshang'\nmain()\n")
    cat = str(write_catalog(tmp_path / "cat"))
    r = subprocess.run([sys.executable, "-c", code, "plan", "--catalog", cat], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--debug" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-c", code, "plan", "--catalog", cat], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env={**os.environ, "YUNSHANG_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr
