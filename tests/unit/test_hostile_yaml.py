"""The one YAML loader (yunshang.yamlload) against hostile files, and every reader that uses it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from yunshang.catalog import load_catalog
from yunshang.errors import CatalogInvalid, InputInvalid, SurveyInvalid
from yunshang.migration.survey import load_survey
from yunshang.yamlload import MAX_BYTES, MAX_DEPTH, parse_yaml, read_yaml

from catalog_fixtures import write_catalog


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# (name, text, expected line, words the one-line message must contain)
HOSTILE = [
    ("alias bomb", _bomb(), 7, "alias"),        # a6 expands to 9^7 > MAX_NODES values
    ("recursive alias in a list", "a: &a [1, *a]\n", 1, "recursive alias"),
    ("recursive alias in a mapping", "top:\n  x: &m {y: *m}\n", 2, "recursive alias"),
    ("deep flow nesting", "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", 1, "nested deeper"),
    ("deep block nesting", "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v\n",
     None, "nested deeper"),
    ("NUL byte", "name: health\x00\n", 1, "NUL"),
    ("control character", "a: 1\nname: he\x07lth\n", 2, "control character"),
    ("duplicate key", "department: health\ntitle: t\ndepartment: treasury\n", 3, "duplicate key 'department'"),
    ("duplicate key nested", "a:\n  b: 1\n  c: 2\n  b: 3\n", 4, "duplicate key 'b'"),
    ("infinity", "price: .inf\n", 1, "finite"),
    ("minus infinity", "price: -.Inf\n", 1, "finite"),
    ("not a number", "price: .nan\n", 1, "finite"),
    ("integer beyond 2^63", "id: 9223372036854775808\n", 1, "2^63"),
    ("python tag", "x: !!python/object/apply:os.system ['id']\n", 1, "unsupported YAML tag"),
    ("binary tag", "x: !!binary aGk=\n", 1, "unsupported YAML tag"),
    ("local tag", "x: !secret abc\n", 1, "unsupported YAML tag"),
    ("list as a key", "? [a, b]\n: 1\n", 1, "keys must be plain"),
    ("bad date", "start: 2026-02-30\n", 1, "date"),
    ("syntax error", "a: [1, 2\nb: 3\n", None, "syntax"),
    ("two documents", "a: 1\n---\nb: 2\n", None, "syntax"),
]


@pytest.mark.parametrize("name,text,line,words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_text_is_refused_with_file_and_line(name, text, line, words):
    t = time.process_time()
    with pytest.raises(InputInvalid) as exc:
        parse_yaml(text, "in.yaml")
    assert time.process_time() - t < 5       # generous: "quickly" means no blow-up, not a benchmark
    (p,) = exc.value.problems
    assert p.file == "in.yaml"
    assert words.lower() in p.message.lower(), p.message
    if line is not None:
        assert p.line == line, str(p)
    assert "\n" not in str(p)


def test_merge_keys_still_work_and_may_be_overridden():
    doc = parse_yaml("base: &b {vcpu: 2, ram_gb: 4}\nsmall:\n  <<: *b\n  vcpu: 1\n", "t.yaml")
    assert doc.value["small"] == {"vcpu": 1, "ram_gb": 4}


def test_shared_alias_values_are_one_object_not_copies():
    doc = parse_yaml("a: &a [1, 2]\nb: *a\n", "t.yaml")
    assert doc.value == {"a": [1, 2], "b": [1, 2]}


def test_lines_of_field_paths():
    doc = parse_yaml("a:\n  b:\n    - x\n    - y: 1\n      z: |\n        hello\n", "t.yaml")
    assert doc.line(("a", "b", 1, "z")) == 5
    assert doc.content_line(("a", "b", 1, "z")) == 6
    assert doc.line(("a", "missing")) == 1          # deepest existing prefix


def test_files_not_utf8_too_big_special_missing(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputInvalid, match="not UTF-8"):
        read_yaml(bad)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)           # sparse: costs no disk
    with pytest.raises(InputInvalid, match="too large"):
        read_yaml(big)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputInvalid, match="special file"):      # never blocks on open()
        read_yaml(fifo)
    with pytest.raises(InputInvalid, match="directory"):
        read_yaml(tmp_path)
    dangling = tmp_path / "dangling.yaml"
    dangling.symlink_to(tmp_path / "nowhere.yaml")
    with pytest.raises(InputInvalid, match="dangling symbolic link"):
        read_yaml(dangling)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(InputInvalid, match="loop"):
        read_yaml(loop)


# ----------------------------------------------------------------------------- through the catalog
def test_catalog_reports_bomb_duplicate_and_bad_bytes_per_file_with_lines(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "departments" / "bomb.yaml").write_text(_bomb())
    (root / "departments" / "dup.yaml").write_text("name: dup\nname: dup2\n")
    (root / "departments" / "nul.yaml").write_bytes(b"name: nul\n\x00\n")
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(root)
    text = str(exc.value)
    assert "bomb.yaml:7:" in text and "alias" in text
    assert "dup.yaml:2: duplicate key 'name'" in text
    assert "nul.yaml:2: NUL byte" in text


@pytest.mark.parametrize("kind", ["dangling", "loop", "directory"])
def test_catalog_refuses_a_department_entry_that_is_not_a_readable_file(tmp_path, kind):
    root = write_catalog(tmp_path / "cat")
    entry = root / "departments" / "treasury.yaml"
    if kind == "dangling":
        entry.symlink_to(tmp_path / "gone.yaml")
    elif kind == "loop":
        entry.symlink_to(entry)
    else:
        entry.mkdir()
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(root)
    assert "treasury.yaml" in str(exc.value)


def _validate_as_someone(root) -> tuple[int, str]:
    """``catalog validate`` on ``root`` as a user whom permissions apply to: this user, or (as root,
    who reads every file) the CLI run as ``nobody`` through setpriv."""
    if os.geteuid() != 0:
        try:
            load_catalog(root)
        except CatalogInvalid as exc:
            return 2, str(exc)
        return 0, ""
    yunshang = os.path.join(os.path.dirname(sys.executable), "yunshang")
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", yunshang,
                        "catalog", "validate", "--catalog", str(root)], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stderr


def test_catalog_refuses_unreadable_file_and_directory():
    base = Path(tempfile.mkdtemp(prefix="yunshang-unreadable-"))    # not under pytest's root-only tmp dir
    try:
        base.chmod(0o755)
        root = write_catalog(base / "cat")
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        f = root / "departments" / "health.yaml"
        f.chmod(0)
        code, err = _validate_as_someone(root)
        assert code == 2 and "health.yaml: cannot read" in err, err
        f.chmod(0o644)
        d = root / "departments"
        d.chmod(0)
        code, err = _validate_as_someone(root)
        d.chmod(0o755)
        assert code == 2 and "departments: cannot list" in err, err
        assert _validate_as_someone(root)[0] == 0          # readable again: the same catalog is valid
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_survey_yaml_goes_through_the_same_loader(tmp_path):
    s = tmp_path / "survey.yaml"
    s.write_text("hosts:\n  - hostname: a\n    hostname: b\n")
    with pytest.raises(SurveyInvalid, match=r"survey.yaml:3: duplicate key 'hostname'"):
        load_survey(str(s))
    s.write_text(_bomb())
    with pytest.raises(SurveyInvalid, match="alias"):
        load_survey(str(s))


# ----------------------------------------------------------------------------- JSON inputs (plans, evidence)
@pytest.mark.parametrize("text,words", [
    ('{"waves": [], "waves": [1]}', "duplicate key 'waves'"),
    ('{"x": NaN}', "finite"),
    ('{"x": Infinity}', "finite"),
    ("[" * 100 + "]" * 100, "nested deeper"),
    ('{"x": 1,,}', "not JSON"),
], ids=["duplicate", "nan", "infinity", "deep", "syntax"])
def test_json_inputs_go_through_the_same_rules(tmp_path, text, words):
    from click.testing import CliRunner

    from cli.main import cli
    from yunshang.yamlload import load_json

    f = tmp_path / "plan.json"
    f.write_text(text)
    with pytest.raises(InputInvalid, match=words):
        load_json(f)
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    key = tmp_path / "id"
    key.write_text("not a key\n")
    r = CliRunner().invoke(cli, ["migrate", "run", str(f), "--clouds", str(clouds), "--ssh-key", str(key),
                                 "--state-dir", str(tmp_path / "state")])
    assert r.exit_code == 2, r.output
    assert str(f) in r.stderr and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "state").exists()
