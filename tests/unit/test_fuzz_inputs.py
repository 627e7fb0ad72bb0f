"""Fuzzing (hypothesis) the loaders and `plan`: whatever the input, nothing escapes but the
project's own errors (InputInvalid/CatalogInvalid/SurveyInvalid/TemplateRenderError, all
YunshangError with an exit code), and a plan that is produced can be rendered.

Bounded: a fixed number of examples each, no deadline per example (the machine is shared),
derandomized so that a failure is reproducible in CI."""
from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_fixtures import DEPARTMENT, PROVIDERS, TEMPLATE, write_catalog
from cli.main import cli
from yunshang.catalog import load_catalog
from yunshang.errors import InputInvalid, TemplateRenderError, YunshangError
from yunshang.migration.survey import parse_survey
from yunshang.model import Template
from yunshang.templates import VARIABLES, render_user_data
from yunshang.yamlload import parse_yaml

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
SLOW = settings(FUZZ, max_examples=80)

# text that is YAML-ish: the characters YAML gives meaning to, plus hostile bytes
YAML_CHARS = st.sampled_from(list("abc01:-[]{},&*!|>#'\"\n \t.%@?<=~") + ["\x00", "\x07", "\ufeff", "é", "中",
                                                                          "<<", "!!", ".inf", "1e308", "\r"])
YAMLISH = st.lists(st.one_of(YAML_CHARS, st.text(max_size=4)), max_size=200).map("".join)
SCALARS = st.sampled_from([".inf", "-.Inf", ".NaN", "1e400", "99999999999999999999", "0x7fffffffffffffffff",
                           "-0b1111111111111111111111111111111111111111111111111111111111111111", "1_000", "0o17",
                           "190:20:30", "2026-02-30", "2026-01-01T25:00:00", "!!python/object:os.system x",
                           "!!binary aGk=", "!local x", "&a [*a]", "*nope", "~", "null", "yes", "'q'", '"\\x00"',
                           "[1, [2, [3]]]", "{a: 1, a: 2}", "<<: {x: 1}", "|\n  text", "x\x00y"])
KEYS = st.sampled_from(["name", "count", "price", "a", "a", "<<", "? [k]", "1", "true", "null"])
YAML_DOCS = st.one_of(
    st.lists(SCALARS, min_size=1, max_size=6).map(lambda vs: "".join(f"k{i}: {v}\n" for i, v in enumerate(vs))),
    st.lists(SCALARS, min_size=1, max_size=6).map(lambda vs: "".join(f"- {v}\n" for v in vs)),
    st.lists(st.tuples(st.integers(0, 3), KEYS, SCALARS), max_size=12).map(
        lambda rows: "".join(f"{'  ' * depth}{k}: {v}\n" for depth, k, v in rows)))

HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["treasury-db\n", "", " ", "\x1b[31m", "9999-12-31", "2026-02-30", "0.0.0.0/0", "-1", "1e308",
                     "{{ cycler.__init__.__globals__.os.popen('id').read() }}", "a" * 300]),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return doc


def _dump(value) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)   # .inf/.nan kept: they must be refused


# ----------------------------------------------------------------------------- the loader
@FUZZ
@given(st.one_of(YAML_DOCS, YAMLISH, st.text(max_size=300)))
def test_loader_on_any_text_only_refuses_cleanly(text):
    try:
        doc = parse_yaml(text, "fuzz.yaml")
    except InputInvalid as exc:
        assert exc.exit_code == 2 and exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
        return
    _assert_plain(doc.value)


@FUZZ
@given(st.binary(max_size=300))
def test_loader_on_any_bytes_only_refuses_cleanly(data):
    try:
        parse_yaml(data, "fuzz.yaml")
    except InputInvalid:
        pass


def _assert_plain(value, depth=0):
    """What the loader returns is plain data: no non-finite floats, ints within 2^63, plain types."""
    assert depth < 100
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, bool) or value is None or isinstance(value, (str, dt.date)):
        pass
    elif isinstance(value, int):
        assert -(2 ** 63) < value < 2 ** 63
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            _assert_plain(k, depth + 1)
            _assert_plain(v, depth + 1)
    else:
        raise AssertionError(f"unexpected type {type(value)}")


# ----------------------------------------------------------------------------- catalog and plan
DEPT_PATHS = list(_paths(DEPARTMENT))
PROV_PATHS = list(_paths(PROVIDERS))
TPL_PATHS = [p for p in _paths(TEMPLATE) if p[:1] != ("user_data",)]


def _plan_must_not_crash(root: Path) -> None:
    from cli.plan import render_table
    from yunshang.placement import place_explained, plan_to_dict

    try:
        cat = load_catalog(root)
    except YunshangError as exc:
        assert exc.exit_code == 2, exc
        return
    result, decisions = place_explained(cat, dt.date(2026, 11, 26), ())
    plan_to_dict(result)
    render_table(cat, result, decisions)
    for p in result.placements:
        assert math.isfinite(p.monthly_cost_cny) and p.monthly_cost_cny >= 0


@SLOW
@given(which=st.sampled_from(["department", "providers", "template"]), data=st.data())
def test_catalog_with_one_hostile_value_is_refused_or_planned(tmp_path_factory, which, data):
    paths = {"department": DEPT_PATHS, "providers": PROV_PATHS, "template": TPL_PATHS}[which]
    path = data.draw(st.sampled_from(paths), label="path")
    value = data.draw(HOSTILE_VALUES, label="value")
    base = {"department": DEPARTMENT, "providers": PROVIDERS, "template": TEMPLATE}[which]
    doc = _replace(base, path, value)
    root = tmp_path_factory.mktemp("fuzzcat")
    kwargs = {"department": {"departments": [DEPARTMENT]}, "providers": {}, "template": {}}[which]
    write_catalog(root, **kwargs)
    target = {"department": root / "departments" / "health.yaml", "providers": root / "providers.yaml",
              "template": root / "templates" / "web.yaml"}[which]
    try:
        target.write_text(_dump(doc))
    except (yaml.YAMLError, TypeError, ValueError):
        return
    _plan_must_not_crash(root)


@SLOW
@given(text=st.one_of(YAML_DOCS, YAMLISH, st.text(max_size=200)))
def test_department_file_of_any_text_through_the_cli(tmp_path_factory, text):
    root = write_catalog(tmp_path_factory.mktemp("fuzzcli"))
    (root / "departments" / "health.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["plan", "--catalog", str(root), "--date", "2026-11-26", "-o", "json"])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code in (0, 2, 3), r.output
    assert "Traceback" not in r.output


# ----------------------------------------------------------------------------- templates and surveys
JINJA_BITS = st.sampled_from(["{{", "}}", "{%", "%}", "for", "in", "range(", ")", "if", "endif", "endfor", "set",
                              "=", "~", "*", "**", "|", "join", "center", "format", "'x'", "9999", "__class__",
                              "cycler", "instance", "index", " ", "\n", ".", "[", "]", "macro", "endmacro", "()"])
JINJA = st.lists(JINJA_BITS, max_size=40).map("".join)


@FUZZ
@given(source=st.one_of(JINJA, st.text(max_size=80)))
def test_any_user_data_renders_or_is_a_template_error(source):
    t = Template(name="web", file="templates/web.yaml", sizes={}, user_data=source, source="user_data: |\n")
    try:
        out = render_user_data(t, dict(VARIABLES))
    except TemplateRenderError as exc:
        assert exc.exit_code == 2 and str(exc).startswith("templates/web.yaml")
        return
    assert isinstance(out, str) and len(out) <= 64 * 1024


@FUZZ
@given(text=st.one_of(YAMLISH, st.text(max_size=200)), csv=st.booleans())
def test_any_survey_text_parses_or_is_a_survey_error(text, csv):
    try:
        parse_survey(text, "survey.csv" if csv else "survey.yaml")
    except YunshangError as exc:
        assert exc.exit_code == 2
