# The two commands of the README: `make demo` and `make test`. Each creates the environment
# from uv.lock first (uv itself is installed, pinned, into .tools/ by the system Python).

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test lint typecheck fuzz check clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

## setup: create .venv from uv.lock (run by every other target)
setup: $(VENV)/.synced

## demo: end-to-end demo on a fresh SQLite home in a temporary folder
demo: setup
	$(VENV)/bin/python demo/demo.py

## test: the whole test suite (PostgreSQL cases need MEDOPS_TEST_POSTGRES_URL)
test: setup
	$(VENV)/bin/pytest

## lint: ruff lint and format check
lint: setup
	$(VENV)/bin/ruff check src tests demo
	$(VENV)/bin/ruff format --check src tests demo

## typecheck: mypy --strict on src/
typecheck: setup
	$(VENV)/bin/mypy

## fuzz: schemathesis against a live server as every role (FUZZ_SECONDS per role)
FUZZ_SECONDS ?= 40
fuzz: setup
	$(VENV)/bin/python -m tests.security.schemathesis_run --seconds $(FUZZ_SECONDS)

## check: everything CI runs, in CI's order
check: lint typecheck demo fuzz test

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
