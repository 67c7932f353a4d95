# Tianping developer commands. Needs only python3 and make (plus network access to PyPI).
#   make test   - create .venv if needed and run the test suite
#   make demo   - create .venv if needed and run the demo (DEMO_ARGS="..." for extra options)

PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
# Touched after a successful install; re-install whenever pyproject.toml is newer.
STAMP      := $(VENV)/.installed.stamp
PYTEST_ARGS ?=
DEMO_ARGS  ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint bench clean

# help: list the targets.
help:
	@echo "targets: venv demo test lint bench clean"

# venv: create .venv (once) and install the project editable with its test extras.
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@

# demo: run the end-to-end demo, keeping its data under ./var.
demo: venv
	$(BIN)/tianping demo --data-dir var $(DEMO_ARGS)

# test: run the whole suite on 2 xdist workers (PostgreSQL tests start a throwaway cluster
# when server binaries are installed; see tests/conftest.py).
test: venv
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

# lint: style (ruff), formatting (ruff format) and types (mypy, strict).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# bench: run every benchmarks/*.py script in turn; stop at the first failure.
bench: venv
	@set -e; for script in benchmarks/*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks/*.py scripts"; break; }; \
		echo "== $$script"; \
		$(BIN)/python "$$script"; \
	done

# clean: remove the venv, caches and build output (keeps ./var, which may hold your data).
clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis benchmarks/out
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./.git -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +
