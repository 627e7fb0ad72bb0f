# The two commands for a newcomer: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CATALOG ?= examples/prefecture
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test unit venv system-deps pulumi devcloud-up devcloud-down lint bench mutation clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use besides the devcloud (which installs its own).
system-deps:
	bash tools/system-deps.sh

# The Pulumi engine (CLI, Python language host, OpenStack provider) built from Go modules into
# ~/.cache/yunshang/pulumi (once per version) and linked into .venv/bin; see docs/pulumi.md.
pulumi: venv
	VENV=$(VENV) bash tools/pulumi/build.sh

# The main job on the bundled sample prefecture.
demo: venv
	bash tools/demo.sh $(CATALOG)

# Every test, including those against the real local OpenStack, sshd hosts and Prometheus.
test: venv system-deps lint pulumi
	$(PY) -m pytest -p no:cacheprovider tests

# ruff over the core package, the adapters and the tests (RUFF_DIRS); mypy over MYPY_FILES. Run by `make test`.
RUFF_DIRS = yunshang/ cli/ api/ exporters/ stacks/ bench/ tools/ playbooks/ tests/
MYPY_FILES = $(wildcard yunshang/*.py) \
             $(wildcard yunshang/usecases/*.py) $(wildcard yunshang/migration/*.py) yunshang/store/__init__.py \
             $(wildcard cli/*.py) $(wildcard exporters/*.py) $(wildcard api/*.py)
lint: venv
	$(VENV)/bin/ruff check --no-cache $(RUFF_DIRS)
	$(VENV)/bin/mypy --no-incremental $(MYPY_FILES)

# The fast inner loop: the pure core and the CLI, no services.
unit: venv
	$(PY) -m pytest -p no:cacheprovider -q tests/unit

# Mutation testing of the pure core (tools/mutation.py; not part of `make test`, ~25 min on 1 core).
# MUTATION_ARGS='-m placement' for one module, '-n 200' for a seeded sample per module.
mutation: venv
	nice -n 10 $(PY) tools/mutation.py $(MUTATION_ARGS)

bench: venv
	for b in bench/*.py; do $(PY) $$b || exit 1; done

devcloud-up: venv
	$(VENV)/bin/yunshang devcloud up

devcloud-down: venv
	$(VENV)/bin/yunshang devcloud down

clean:
	rm -rf $(VENV) build *.egg-info
