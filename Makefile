# The two commands: `make demo` (a whole rollout on 127.0.0.1) and `make test` (lint, types,
# tests); `make run` is the daemon against your database. Each does its own set-up: a virtualenv
# in .venv, and the Debian packages (PostgreSQL, Prometheus, Alertmanager) the demo and tests need
# (the tests also Chromium and its driver).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv reads uv.lock (every dependency, dev ones included, pinned with hashes); pip installs what
# it exports, hashes checked. `make lock` refreshes the lock within pyproject.toml's ranges.
UV_VERSION := $(shell sed -n 's/^ARG UV_VERSION=//p' Containerfile)

.PHONY: demo run test lint lock system-deps test-deps clean

$(BIN)/rollout-monitor: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv export --quiet --frozen --extra dev --no-emit-project --no-header \
	  --format requirements-txt --output-file $(VENV)/requirements.txt
	$(BIN)/pip install --quiet --require-hashes -r $(VENV)/requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

lock: $(BIN)/rollout-monitor
	$(BIN)/uv lock --upgrade

demo: system-deps $(BIN)/rollout-monitor
	$(BIN)/rollout-monitor demo $(DEMO_ARGS)

run: $(BIN)/rollout-monitor
	$(BIN)/rollout-monitor run

system-deps:
	scripts/install-system-deps

test-deps:
	scripts/install-system-deps --tests

# bench/ is type-checked on its own: its scripts import each other as top-level modules
# (run as `python bench/x.py`), which one mypy run beside tests/ would see twice.
# scripts/rollout-gate (no .py: a command) is named so that ruff and mypy read it.
lint: $(BIN)/rollout-monitor
	$(BIN)/ruff check monitor dashboards tests bench scripts/rollout-gate
	$(BIN)/ruff format --check monitor dashboards tests bench scripts/rollout-gate
	$(BIN)/mypy
	$(BIN)/mypy bench
	$(BIN)/mypy scripts/rollout-gate

# prometheus-operator's schemas, for the test of deploy/kubernetes (from the npm registry).
tests/kubernetes/node_modules: tests/kubernetes/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix tests/kubernetes
	touch $@

# pytest exits 5 when it collects no test: that is a failure here, never a silent pass.
test: test-deps lint tests/kubernetes/node_modules
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
