"""Survey parsing and validation: every bad row reported with row number and field."""
from __future__ import annotations

import textwrap

import pytest

from yunshang.errors import SurveyInvalid
from yunshang.migration.survey import load_survey, parse_survey

HEADER = ("hostname,address,ssh_user,ssh_port,os,vcpu,ram_gb,disk_gb,data_paths,services,business_system,depends_on,"
          "maintenance_window,department")
GOOD_ROW = ("web-01,10.0.0.1,root,22,debian12,2,4,40,/srv/a;/srv/b,web:80:http /health;ssh:22:tcp,hukou,,"
            "daily 01:00-05:00,public-security")


def test_csv_good_survey_parses_all_fields():
    s = parse_survey(HEADER + "\n" + GOOD_ROW + "\n" + GOOD_ROW.replace("web-01", "web-02").replace(",,", ",web-01,") + "\n",
                     "s.csv")
    a, b = s.hosts
    assert (a.hostname, a.address, a.ssh_user, a.ssh_port, a.vcpu, a.ram_gb, a.disk_gb) == ("web-01", "10.0.0.1", "root", 22,
                                                                                            2, 4.0, 40)
    assert a.data_paths == ("/srv/a", "/srv/b")
    assert [(x.name, x.port, x.check) for x in a.services] == [("web", 80, "http /health"), ("ssh", 22, "tcp")]
    assert a.services[0].check_kind == "http" and a.services[0].check_arg == "/health"
    assert b.depends_on == ("web-01",) and a.row == 2 and b.row == 3


def test_yaml_survey_and_defaults(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""\
        hosts:
          - hostname: db-01
            address: db01.psb.example
            os: centos7
            vcpu: 4
            ram_gb: 8
            disk_gb: 100
            business_system: hukou
            department: public-security
            services: [{name: pg, port: 5432, check: tcp}]
          - hostname: app-01
            address: 10.0.0.2
            os: centos7
            vcpu: 2
            ram_gb: 2.5
            disk_gb: 20
            business_system: hukou
            department: public-security
            depends_on: [db-01]
            operator: telecom
        """))
    s = load_survey(str(p))
    db, app = s.hosts
    assert (db.ssh_user, db.ssh_port, db.maintenance_window, db.operator) == ("root", 22, "any", "")
    assert app.ram_gb == 2.5 and app.depends_on == ("db-01",) and app.operator == "telecom"
    assert (db.row, app.row) == (2, 11)


# (cell overrides on GOOD_ROW, field expected in the report, fragment of the message)
BAD_CELLS = [
    ({"hostname": "Web_01"}, "hostname", "lowercase"),
    ({"address": "10.0.0.300"}, "address", "IP address or DNS name"),
    ({"ssh_port": "70000"}, "ssh_port", "1..65535"),
    ({"ssh_port": "ssh"}, "ssh_port", "whole number"),
    ({"vcpu": "0"}, "vcpu", "1..1024"),
    ({"vcpu": "1.5"}, "vcpu", "whole number"),
    ({"ram_gb": "-1"}, "ram_gb", "> 0"),
    ({"ram_gb": "lots"}, "ram_gb", "a number"),
    ({"disk_gb": ""}, "disk_gb", "required"),
    ({"os": ""}, "os", "required"),
    ({"data_paths": "srv/rel"}, "data_paths", "absolute path"),
    ({"data_paths": "/srv/../etc"}, "data_paths", "without '..'"),
    ({"services": "web:http:tcp"}, "services.web.port", "whole number"),
    ({"services": "web:80:ping"}, "services.web.check", "expected 'tcp'"),
    ({"services": "web:80:http health"}, "services.web.check", "'http /path'"),
    ({"services": "web"}, "services", "name:port:check"),
    ({"depends_on": "ghost-01"}, "depends_on", "unknown host 'ghost-01'"),
    ({"depends_on": "web-01"}, "depends_on", "depends on itself"),
    ({"maintenance_window": "someday 1-2"}, "maintenance_window", "HH:MM-HH:MM"),
    ({"maintenance_window": "mon 25:00-26:00"}, "maintenance_window", "HH:MM-HH:MM"),
    ({"department": "Public Security"}, "department", "department name"),
    ({"ssh_user": "Root!"}, "ssh_user", "POSIX user"),
    ({"business_system": ""}, "business_system", "required"),
]


@pytest.mark.parametrize("cells,field,fragment", BAD_CELLS)
def test_each_bad_cell_is_reported_with_row_and_field(cells, field, fragment):
    cols = HEADER.split(",")
    row = dict(zip(cols, GOOD_ROW.split(","), strict=True))
    row.update(cells)
    text = "\n".join([HEADER, GOOD_ROW.replace("web-01", "ok-01"), ",".join(row[c] for c in cols)]) + "\n"
    with pytest.raises(SurveyInvalid) as ei:
        parse_survey(text, "dept.csv")
    problems = ei.value.problems
    assert [(p.file, p.line, p.field) for p in problems] == [("dept.csv", 3, field)], problems
    assert fragment in problems[0].message
    assert f"dept.csv:3: {field}:" in str(ei.value)


def test_all_bad_rows_reported_at_once():
    text = "\n".join([HEADER, GOOD_ROW.replace("2,4,40", "x,4,40"), GOOD_ROW.replace("web-01", "web-02").replace("10.0.0.1",
                                                                                                                 "nope..x"),
                      GOOD_ROW]) + "\n"
    with pytest.raises(SurveyInvalid) as ei:
        parse_survey(text, "s.csv")
    got = [(p.line, p.field) for p in ei.value.problems]
    assert got == [(2, "vcpu"), (3, "address")], got  # row 4 (a valid web-01) counts as the first web-01


def test_duplicate_hostname_and_unknown_column():
    with pytest.raises(SurveyInvalid) as ei:
        parse_survey(HEADER + "\n" + GOOD_ROW + "\n" + GOOD_ROW + "\n", "s.csv")
    assert [(p.line, p.field) for p in ei.value.problems] == [(3, "hostname")]
    assert "first at row 2" in ei.value.problems[0].message
    with pytest.raises(SurveyInvalid) as ei:
        parse_survey(HEADER + ",colour\n" + GOOD_ROW + ",blue\n", "s.csv")
    assert ei.value.problems[0].field == "colour" and ei.value.problems[0].line == 1


@pytest.mark.parametrize("text,field,line", [
    ("hosts: 3\n", "hosts", None),
    ("hosts:\n  - just-a-string\n", "", 2),
    ("hosts:\n  - {hostname: a, colour: red}\n", "colour", 2),
    ("hosts: [\n", "", 2),
])
def test_yaml_shape_errors(text, field, line):
    with pytest.raises(SurveyInvalid) as ei:
        parse_survey(text, "s.yaml")
    p = ei.value.problems[0]
    assert (p.field, p.line) == (field, line)


def test_missing_file_is_a_survey_error(tmp_path):
    with pytest.raises(SurveyInvalid) as ei:
        load_survey(str(tmp_path / "nope.csv"))
    assert "cannot read" in str(ei.value) and ei.value.exit_code == 2
