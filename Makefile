# The two commands: `make run` (the daemon) and `make test` (lint, types, tests).
# Each does its own set-up: a virtualenv in .venv, and system packages the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint system-deps clean

$(BIN)/rollout-monitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/rollout-monitor
	$(BIN)/rollout-monitor run

system-deps:
	scripts/install-system-deps

lint: $(BIN)/rollout-monitor
	$(BIN)/ruff check monitor tests
	$(BIN)/ruff format --check monitor tests
	$(BIN)/mypy

# pytest exits 5 when it collects no test: that is a failure here, never a silent pass.
test: system-deps lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
