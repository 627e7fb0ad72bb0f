"""user_data templates are data: the bounded immutable sandbox refuses code, unknown names and blow-ups."""
from __future__ import annotations

import copy
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from yunshang.errors import TemplateRenderError
from yunshang.model import Template
from yunshang.templates import MAX_OUTPUT, VARIABLES, check_user_data, render_user_data

from catalog_fixtures import TEMPLATE, write_catalog

CANARY = "yunshang-canary-5e1f0c"

HOSTILE = [
    ("shell via cycler", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
    ("shell via self", "{{ self.__init__.__globals__['os'].popen('id').read() }}"),
    ("subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    ("environ via lipsum", "{{ lipsum.__globals__['os'].environ }}"),
    ("environ via attr filter", "{{ instance|attr('__class__') }}"),
    ("namespace global", "{% set ns = namespace(x=1) %}{{ ns.x }}"),
    ("list mutation", "{% set l = [1] %}{{ l.append(2) }}"),
    ("dict mutation", "{% set d = {} %}{{ d.update(a=1) }}"),
    ("string times a billion", "{{ 'x' * 1000000000 }}"),
    ("list times a million", "{% set a = 'x' * 100000 %}{{ ([a] * 1000000)|length }}"),
    ("huge power", "{{ 10 ** 100000000 }}"),
    ("repeated squaring", "{% set a = 2 ** 4000 %}{{ a * a * a }}"),
    ("nested loops", "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}"),
    ("doubling with ~", "{% set a = 'x' * 1000 %}" + "".join(
        f"{{% set a{i} = a{i - 1 if i else ''} ~ a{i - 1 if i else ''} %}}" for i in range(12)) + "{{ a11 }}"),
    ("center width", "{{ 'x'|center(1000000000) }}"),
    ("indent blow-up", "{{ ('x\\n' * 300000)|indent(9000) }}"),
    ("replace blow-up", "{{ ('x' * 5000)|replace('x', 'y' * 5000) }}"),
    ("join blow-up", "{% set a = 'x' * 200000 %}{{ [a, a, a, a, a, a]|join }}"),
    ("percent width", "{{ '%0999999999d' % 1 }}"),
    ("format width", "{{ '{:>999999999}'.format(1) }}"),
    ("slice count", "{{ [1]|slice(1000000000)|list }}"),
    ("exponential macro", "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"),
    ("infinite recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
    ("output too large", "{% for i in range(9000) %}0123456789{% endfor %}"),
    ("undefined variable", "{{ password }}"),
    ("division by zero", "{{ index // 0 }}"),
    ("syntax", "{% for x in %}"),
]


def _template(source: str) -> Template:
    return Template(name="web", file="templates/web.yaml", sizes={}, user_data=source,
                    source="name: web\nuser_data: |\n" + "\n".join("  " + ln for ln in source.splitlines()))


@pytest.mark.parametrize("name,source", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_user_data_is_a_clear_bounded_refusal(name, source, monkeypatch):
    monkeypatch.setenv("YUNSHANG_TEST_SECRET", CANARY)
    t = time.monotonic()
    with pytest.raises(TemplateRenderError) as exc:
        render_user_data(_template(source), dict(VARIABLES))
    assert time.monotonic() - t < 10          # bounded (the sandbox's own limit is 1 s)
    message = str(exc.value)
    assert message.startswith("templates/web.yaml:3: user_data: "), message
    assert "\n" not in message and CANARY not in message
    assert "uid=" not in message              # `id` never ran
    assert exc.value.exit_code == 2
    # and catalog validate reports the same template (static or trial render)
    assert check_user_data(source), name


def test_documented_variables_render_and_output_limit_is_the_nova_one():
    src = "#cloud-config\nhostname: {{ instance }}\n{% for i in range(2) %}- {{ zone ~ '-' ~ i }}\n{% endfor %}" \
          "{{ '%s/%d' % (cidr, mlps_level) }} {{ '{}c'.format(vcpu) }} {{ [ram_gb, disk_gb]|join('/') }}\n"
    out = render_user_data(_template(src), dict(VARIABLES))
    assert out == ("#cloud-config\nhostname: sample-dept-app-01\n- az1-0\n- az1-1\n10.1.0.0/24/3 2c 4/50\n")
    assert check_user_data(src) == []
    big = "{%% for i in range(%d) %%}xxxxxxxx{%% endfor %%}" % (MAX_OUTPUT // 8)
    assert len(render_user_data(_template(big), dict(VARIABLES))) == MAX_OUTPUT       # exactly the limit: fine
    with pytest.raises(TemplateRenderError, match="output too large"):
        render_user_data(_template(big + "x"), dict(VARIABLES))


def test_output_too_large_names_the_line_that_crossed_the_limit():
    loop = "{%% for i in range(%d) %%}xxxxxxxx{%% endfor %%}" % (MAX_OUTPUT // 8 + 1)
    src = "#cloud-config\nhostname: {{ instance }}\n" + loop + "\nlast: line\n"
    with pytest.raises(TemplateRenderError) as ei:
        render_user_data(_template(src), dict(VARIABLES))
    # user_data line 3 is line 5 of the file (`user_data: |` on line 2)
    assert str(ei.value).startswith("templates/web.yaml:5: user_data: refused by the sandbox: output too large"), ei.value
    macro = "{% macro big() %}" + loop + "{% endmacro %}\n#cloud-config\n{{ big() }}\n"
    with pytest.raises(TemplateRenderError) as ei:
        render_user_data(_template(macro), dict(VARIABLES))
    assert str(ei.value).startswith("templates/web.yaml:5: user_data:"), ei.value
    assert check_user_data(src)[0][0] == 3


def test_undocumented_variable_passed_by_a_caller_is_refused():
    with pytest.raises(TemplateRenderError, match="undocumented variables passed: environ"):
        render_user_data(_template("{{ instance }}"), dict(VARIABLES, environ={"HOME": "/root"}))


def test_the_environment_is_not_reachable(monkeypatch):
    monkeypatch.setenv("YUNSHANG_TEST_SECRET", CANARY)
    for src in ("{{ environ }}", "{{ os }}", "{{ config }}", "{{ request.environ }}", "{{ range.__globals__ }}",
                "{{ dict.__init__ }}", "{{ self }}"):
        try:
            out = render_user_data(_template(src), dict(VARIABLES))
        except TemplateRenderError as exc:
            out = str(exc)
        assert CANARY not in out


@pytest.mark.parametrize("source,expect", [
    ("ok\n{{ cycler.__init__.__globals__.os.popen('id').read() }}\n", "unknown variable cycler"),
    ("ok\nok\n{{ ''.__class__ }}\n", "refused by the sandbox"),
    ("ok\n{{ 'x' * 1000000000 }}\n", "too large"),
])
def test_catalog_validate_reports_what_the_sandbox_refuses_with_file_and_line(tmp_path, source, expect):
    tpl = copy.deepcopy(TEMPLATE)
    tpl["user_data"] = "x"
    root = write_catalog(tmp_path / "cat", templates=[tpl])
    f = root / "templates" / "web.yaml"          # user_data as a block scalar, as templates are written
    lines = [ln for ln in f.read_text().splitlines() if not ln.startswith("user_data:")]
    f.write_text("\n".join(lines + ["user_data: |"] + ["  " + ln for ln in source.splitlines()]) + "\n")
    r = CliRunner().invoke(cli, ["catalog", "validate", "--catalog", str(root)])
    assert r.exit_code == 2, r.output
    text = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert "web.yaml:" in text and "user_data" in text and expect in text, text
    assert "Traceback" not in text
    want_line = source.rstrip("\n").count("\n") + 1          # the bad line inside user_data
    line = int(text.split("web.yaml:")[1].split(":")[0])
    raw = (root / "templates" / "web.yaml").read_text().splitlines()
    ud = next(i for i, ln in enumerate(raw, start=1) if ln.startswith("user_data:"))
    assert line == ud + want_line, text
