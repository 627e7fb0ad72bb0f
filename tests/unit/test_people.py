"""people.yaml: the center's people and the approval chain, validated like the other catalog files."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yunshang.catalog import load_catalog
from yunshang.errors import CatalogInvalid

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefecture"


def test_the_sample_people_and_the_default_chain():
    cat = load_catalog(SAMPLE)
    assert {p.name for p in cat.people} >= {"health-it", "health-head", "center-approver-1", "center-approver-2"}
    assert cat.person("health-head").department == "health" and cat.person("health-head").roles == ("department-head",)
    assert cat.person("center-auditor").department == ""
    assert cat.approval.department_head_endorses and cat.approval.two_approvers_above_cny_per_month == 100000


def test_every_problem_of_a_bad_people_file_at_once(tmp_path):
    root = tmp_path / "cat"
    shutil.copytree(SAMPLE, root)
    (root / "people.yaml").write_text(
        "approval: {two_approvers_above_cny_per_month: -1, extra: 1}\n"
        "people:\n"
        "  - {name: a, display_name: A, roles: [requester]}\n"                           # no department
        "  - {name: b, display_name: B, department: healht, roles: [requester]}\n"       # typo
        "  - {name: c, display_name: C, department: health, roles: [approver]}\n"        # center role + dept
        "  - {name: d, display_name: D, roles: [boss]}\n"                                 # unknown role
        "  - {name: a, display_name: A2, roles: [auditor]}\n", encoding="utf-8")         # duplicate
    with pytest.raises(CatalogInvalid) as e:
        load_catalog(root)
    text = str(e.value)
    for needle in ("people.yaml:1: approval.two_approvers_above_cny_per_month", "approval.extra: unknown field",
                   "people[0].department: missing", "people[1].department: unknown department 'healht' "
                   "(did you mean 'health'?)", "people[2].department: center-wide roles", "people[3].roles[0]",
                   "people[4].name: duplicate person 'a'"):
        assert needle in text, (needle, text)


def test_notifications_go_to_the_people_waited_on():
    from yunshang.notify import Notifier

    n = Notifier(people=load_catalog(SAMPLE).people)
    assert n.recipients("department-head", "health") == ["health-head@gov.example.cn"]
    assert n.recipients("department-head", "finance") == []           # no head of finance in the sample
    assert n.recipients("approver", "health") == ["center-approver-1@gov.example.cn",
                                                  "center-approver-2@gov.example.cn"]
