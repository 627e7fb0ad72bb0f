"""The playbooks pass ansible-lint's production profile, and follow the naming rules."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(ROOT, "playbooks", "project")


def test_ansible_lint_production_profile():
    lint = os.path.join(os.path.dirname(sys.executable), "ansible-lint")
    # from the project directory, so its ansible.cfg (roles_path, collections_path) applies, as in AWX
    r = subprocess.run([lint, "--profile", "production", "--offline", "--nocolor"],
                       cwd=PROJECT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Profile 'production' was required, and it passed" in r.stdout + r.stderr


def test_names_verb_noun_and_role_prefixed_variables():
    playbooks = sorted(f for f in os.listdir(PROJECT) if f.endswith(".yml"))
    roles = sorted(os.listdir(os.path.join(PROJECT, "roles")))
    assert [p[:-4] for p in playbooks] == roles          # one role per playbook, same name
    for name in roles:
        assert re.fullmatch(r"[a-z]+_[a-z]+", name), name
        with open(os.path.join(PROJECT, "roles", name, "defaults", "main.yml")) as fh:
            defaults = yaml.safe_load(fh) or {}
        assert defaults and all(k.startswith(name + "_") for k in defaults), (name, list(defaults))
        tasks = open(os.path.join(PROJECT, "roles", name, "tasks", "main.yml")).read()
        for var in re.findall(r"^\s+register: (\w+)", tasks, re.M):
            assert var.startswith(name + "_"), (name, var)
        assert "- name: Record step done" in tasks      # the runner marks a host's step done on this task
