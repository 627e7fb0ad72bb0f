"""Catalog loading: every rule has a table row that breaks only that rule and expects its problem."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest

from catalog_fixtures import DEPARTMENT, PROVIDERS, TEMPLATE, write_catalog
from yunshang.catalog import load_catalog
from yunshang.errors import CatalogInvalid

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefecture"


def _problems(root: Path):
    with pytest.raises(CatalogInvalid) as exc:
        load_catalog(root)
    return exc.value.problems


def _build(tmp_path, mutate):
    p, d, t = copy.deepcopy(PROVIDERS), [copy.deepcopy(DEPARTMENT)], [copy.deepcopy(TEMPLATE)]
    mutate(p, d, t)
    return write_catalog(tmp_path / "cat", p, d, t)


def test_small_valid_catalog_loads(tmp_path):
    cat = load_catalog(_build(tmp_path, lambda p, d, t: None))
    assert [p.name for p in cat.providers] == ["telecom", "govcloud"]
    assert cat.providers[0].zones[1].overcommit.vcpu == 1.0          # default
    dept = cat.department("health")
    assert dept.requests[0].mlps_level == 3                          # default: the department's
    assert dept.contracts[0].sla_credits[0].credit_ratio == 0.05
    assert cat.templates["web"].sizes["small"].vcpu == 2
    assert cat.templates["web"].ingress[0].port_min == 443 == cat.templates["web"].ingress[0].port_max


def _set(path):
    """mutation: set a nested key given as ("providers", 0, "zones", 0, "vcpu"), value."""
    def apply(p, d, t, value):
        target = {"providers": p, "departments": d, "templates": t}
        obj = target[path[0]]
        for k in path[1:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return apply


def case(path, value, file, field, msg):
    def mutate(p, d, t):
        _set(path)(p, d, t, value)
    return pytest.param(mutate, file, field, msg, id=f"{'.'.join(map(str, path[1:]))}={value!r}")


def _del(path, file, field, msg, id):
    def mutate(p, d, t):
        target = {"providers": p, "departments": d, "templates": t}
        obj = target[path[0]]
        for k in path[1:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return pytest.param(mutate, file, field, msg, id=id)


def _fn(fn, file, field, msg, id):
    return pytest.param(fn, file, field, msg, id=id)


def _dup_provider(p, d, t):
    p["providers"][1]["name"] = "telecom"
    p["providers"][1]["cloud"] = "telecom2"


def _dup_zone(p, d, t):
    p["providers"][0]["zones"][1]["name"] = "az1"


def _dup_contract(p, d, t):
    d[0]["contracts"][1]["id"] = "WJ-1"


def _dup_contract_across(p, d, t):
    other = copy.deepcopy(d[0])
    other["name"] = "education"
    other["contracts"] = [other["contracts"][0]]
    d.append(other)


def _dup_request(p, d, t):
    d[0]["requests"][1]["name"] = "his"


def _dup_template(p, d, t):
    other = copy.deepcopy(t[0])
    other["name"] = "web"
    t.append(dict(other, name="web"))
    t[1] = dict(other)
    t[1]["name"] = "web"


def _unknown_field(p, d, t):
    p["providers"][0]["mlps_levle"] = 3


CASES = [
    case(("providers", "providers", 0, "zones", 0, "vcpu"), -8, "providers.yaml", "providers[0].zones[0].vcpu", "from 0 to"),
    case(("providers", "providers", 0, "zones", 1, "disk_gb"), "lots", "providers.yaml", "providers[0].zones[1].disk_gb",
         "expected an integer"),
    case(("providers", "providers", 0, "zones", 0, "overcommit", "vcpu"), 0.5, "providers.yaml",
         "providers[0].zones[0].overcommit.vcpu", "from 1 to 64"),
    case(("providers", "providers", 1, "mlps_level"), 5, "providers.yaml", "providers[1].mlps_level", "from 1 to 4"),
    case(("providers", "providers", 1, "mlps_level"), 0, "providers.yaml", "providers[1].mlps_level", "from 1 to 4"),
    case(("providers", "providers", 0, "sla", "availability"), 0, "providers.yaml", "providers[0].sla.availability", "(0, 1]"),
    case(("providers", "providers", 0, "sla", "availability"), 1.5, "providers.yaml", "providers[0].sla.availability", "(0, 1]"),
    case(("providers", "providers", 0, "name"), "Tele_Com", "providers.yaml", "providers[0].name", "lowercase letters"),
    case(("providers", "providers", 0, "dedicated"), "no", "providers.yaml", "providers[0].dedicated", "true or false"),
    case(("providers", "providers", 0, "prices", "vcpu"), -1, "providers.yaml", "providers[0].prices.vcpu", "from 0 to"),
    case(("providers", "providers", 0, "maintenance"), [{"start": "2026-11-14T20:00:00Z", "end": "2026-11-14T16:00:00Z"}],
         "providers.yaml", "providers[0].maintenance[0].end", "after start"),
    _del(("providers", "providers", 0, "cloud"), "providers.yaml", "providers[0]", "missing required field 'cloud'",
         "missing-cloud"),
    _fn(_unknown_field, "providers.yaml", "providers[0].mlps_levle", "did you mean 'mlps_level'", "unknown-field-typo"),
    _fn(_dup_provider, "providers.yaml", "providers[1].name", "duplicate provider name 'telecom'", "duplicate-provider"),
    _fn(_dup_zone, "providers.yaml", "providers[0].zones[1]", "duplicate zone name 'az1'", "duplicate-zone"),
    case(("departments", 0, "mlps_level"), 7, "health.yaml", "mlps_level", "from 1 to 4"),
    case(("departments", 0, "contracts", 0, "provider"), "unicorn", "health.yaml", "contracts[0].provider",
         "unknown provider 'unicorn'"),
    case(("departments", 0, "contracts", 0, "role"), "standby", "health.yaml", "contracts[0].role", "primary | backup"),
    case(("departments", 0, "contracts", 0, "end"), dt.date(2025, 12, 31), "health.yaml", "contracts[0].end", "end before start"),
    case(("departments", 0, "contracts", 0, "start"), "soon", "health.yaml", "contracts[0].start", "YYYY-MM-DD"),
    case(("departments", 0, "contracts", 0, "ceiling_cny_per_month"), -5, "health.yaml", "contracts[0].ceiling_cny_per_month",
         "from 0 to"),
    case(("departments", 0, "contracts", 0, "sla_credits"), [{"below": 0.999, "credit_ratio": 2}], "health.yaml",
         "contracts[0].sla_credits[0].credit_ratio", "from 0 to 1"),
    case(("departments", 0, "requests", 0, "template"), "webb", "health.yaml", "requests[0].template", "unknown template 'webb'"),
    case(("departments", 0, "requests", 0, "size"), "huge", "health.yaml", "requests[0].size", "unknown size 'huge'"),
    case(("departments", 0, "requests", 0, "count"), 0, "health.yaml", "requests[0].count", "from 1 to 10000"),
    case(("departments", 0, "requests", 0, "count"), 2.5, "health.yaml", "requests[0].count", "expected an integer"),
    case(("departments", 0, "requests", 0, "mlps_level"), 5, "health.yaml", "requests[0].mlps_level", "from 1 to 4"),
    case(("departments", 0, "requests", 0, "ha"), "yes please", "health.yaml", "requests[0].ha", "true or false"),
    case(("departments", 0, "probes", 0, "kind"), "icmp", "health.yaml", "probes[0].kind", "http | tcp"),
    case(("departments", 0, "probes", 0, "target"), "127.0.0.1", "health.yaml", "probes[0].target", "http(s):// URL"),
    case(("departments", 0, "probes", 0, "contract"), "XX-1", "health.yaml", "probes[0].contract", "unknown contract 'XX-1'"),
    case(("departments", 0, "users", 0, "email"), "nobody", "health.yaml", "users[0].email", "e-mail"),
    _fn(_dup_contract, "health.yaml", "contracts[1].id", "duplicate contract id 'WJ-1'", "duplicate-contract"),
    _fn(_dup_contract_across, "health.yaml", "contracts[0].id", "duplicate contract id 'WJ-1'",
        "duplicate-contract-across-departments"),
    _fn(_dup_request, "health.yaml", "requests[1].name", "duplicate request name 'his'", "duplicate-request"),
    case(("templates", 0, "ingress", 0, "remote_cidr"), "10.0.0.1/8", "web.yaml", "ingress[0].remote_cidr", "CIDR"),
    case(("templates", 0, "ingress", 0, "protocol"), "sctp", "web.yaml", "ingress[0].protocol", "tcp | udp | icmp | any"),
    case(("templates", 0, "ingress", 0, "port"), 70000, "web.yaml", "ingress[0].port", "from 1 to 65535"),
    case(("templates", 0, "egress", 0, "port"), 22, "web.yaml", "egress[0].protocol", "ports only apply to tcp or udp"),
    case(("templates", 0, "sizes", "small", "vcpu"), 0, "web.yaml", "sizes.small.vcpu", "from 1 to 1,000,000"),
    case(("templates", 0, "floating_ips"), -1, "web.yaml", "floating_ips", "from 0 to"),
    case(("templates", 0, "user_data"), "#cloud-config\nhostname: {{ instance }\n", "web.yaml", "user_data",
         "Jinja2 syntax error on line 2"),
    case(("templates", 0, "volumes"), [{"name": "a", "size_gb": 1}, {"name": "a", "size_gb": 2}], "web.yaml", "volumes[1]",
         "duplicate volume name 'a'"),
]


@pytest.mark.parametrize("mutate,file,field,msg", CASES)
def test_each_rule_reports_its_problem(tmp_path, mutate, file, field, msg):
    root = _build(tmp_path, mutate)
    problems = _problems(root)
    hits = [p for p in problems if p.file.endswith(file) and p.field == field and msg in p.message]
    assert hits, "\n".join(map(str, problems))
    assert hits[0].line is not None and hits[0].line >= 1


def test_duplicate_template_and_department_names(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "templates" / "web2.yaml").write_text((root / "templates" / "web.yaml").read_text())
    (root / "departments" / "health2.yaml").write_text((root / "departments" / "health.yaml").read_text())
    text = "\n".join(map(str, _problems(root)))
    assert "duplicate template name 'web'" in text
    assert "duplicate department name 'health'" in text


def test_yaml_syntax_error_has_the_line(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "departments" / "health.yaml").write_text("name: health\nmlps_level: 3\ncontracts: [\n  {id: X\n")
    problems = _problems(root)
    [p] = [p for p in problems if p.file.endswith("health.yaml")]
    assert "YAML syntax error" in p.message and p.line in (4, 5)


def test_duplicate_yaml_key_is_a_problem(tmp_path):
    root = write_catalog(tmp_path / "cat")
    f = root / "departments" / "health.yaml"
    f.write_text(f.read_text() + "mlps_level: 2\n")
    assert any("duplicate key 'mlps_level'" in p.message for p in _problems(root))


def test_line_numbers_point_at_the_field(tmp_path):
    root = write_catalog(tmp_path / "cat")
    f = root / "providers.yaml"
    lines = f.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if "overcommit" in line)
    lines[i + 1] = lines[i + 1].replace("4.0", "0.5")
    f.write_text("\n".join(lines) + "\n")
    [p] = _problems(root)
    assert p.field == "providers[0].zones[0].overcommit.vcpu" and p.line == i + 2


def test_jinja_line_maps_into_the_file(tmp_path):
    root = write_catalog(tmp_path / "cat")
    f = root / "templates" / "web.yaml"
    f.write_text("name: web\nsizes:\n  small: {vcpu: 1, ram_gb: 1, disk_gb: 1}\n"
                 "user_data: |\n  line one\n  line two\n  {{ bad }\n  last\n")
    [p] = _problems(root)
    assert p.field == "user_data" and p.line == 7 and "line 3 of user_data" in p.message, p


def test_all_problems_at_once_across_files(tmp_path):
    def mutate(p, d, t):
        p["providers"][0]["zones"][0]["vcpu"] = -1
        d[0]["contracts"][0]["provider"] = "nope"
        d[0]["requests"][0]["size"] = "huge"
        t[0]["ingress"][0]["remote_cidr"] = "not-a-net"
    problems = _problems(_build(tmp_path, mutate))
    files = {Path(p.file).name for p in problems}
    assert files == {"providers.yaml", "health.yaml", "web.yaml"} and len(problems) == 4


def test_missing_directory_and_files(tmp_path):
    [p] = _problems(tmp_path / "nowhere")
    assert "catalog directory" in p.message
    (tmp_path / "empty").mkdir()
    text = "\n".join(map(str, _problems(tmp_path / "empty")))
    assert "providers.yaml" in text and "departments/" in text and "templates/" in text


def test_file_name_must_match_name(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "departments" / "health.yaml").rename(root / "departments" / "wellbeing.yaml")
    assert any("file name to match" in p.message for p in _problems(root))


def test_secret_request_without_dedicated_contract_is_not_a_catalog_error(tmp_path):
    def mutate(p, d, t):
        d[0]["contracts"] = [d[0]["contracts"][0]]       # telecom only; the secret request stays
    cat = load_catalog(_build(tmp_path, mutate))
    assert cat.department("health").requests[1].secret is True


def test_cidr_index_is_stable_by_name(tmp_path):
    depts = []
    for name in ("transport", "agriculture", "health"):
        d = copy.deepcopy(DEPARTMENT)
        d["name"] = name
        for c in d["contracts"]:
            c["id"] = f"{name}-{c['id']}"
        depts.append(d)
    cat = load_catalog(write_catalog(tmp_path / "cat", departments=depts))
    assert [(d.name, d.cidr_index) for d in cat.departments] == [("agriculture", 1), ("health", 2), ("transport", 3)]


def test_maintenance_datetimes_are_utc(tmp_path):
    def mutate(p, d, t):
        p["providers"][0]["maintenance"] = [{"start": "2026-11-14T16:00:00Z", "end": "2026-11-14T20:00:00+08:00",
                                             "reason": "x"}]
    problems = _problems(_build(tmp_path, mutate))        # 20:00+08 is 12:00Z: before the start
    assert problems[0].field == "providers[0].maintenance[0].end"


def test_the_bundled_sample_is_valid_and_realistic():
    cat = load_catalog(SAMPLE)
    assert {p.name for p in cat.providers} == {"telecom", "unicom", "govcloud", "cmcc"}   # cmcc: county centers
    assert [p.name for p in cat.providers if p.dedicated] == ["govcloud"]
    assert len(cat.departments) >= 12 and len(cat.templates) >= 5
    assert all(d.users and d.probes for d in cat.departments)
    instances = sum(r.count * (2 if r.dr else 1) for d in cat.departments for r in d.requests)
    assert 500 <= instances <= 5000


def test_broken_providers_file_does_not_cascade_into_departments(tmp_path):
    root = write_catalog(tmp_path / "cat")
    (root / "providers.yaml").write_text("providers:\n  - name: telecom\n    cloud: [oops\n")
    problems = _problems(root)
    assert [Path(p.file).name for p in problems] == ["providers.yaml"]
    assert "YAML syntax error" in problems[0].message and problems[0].line == 4
