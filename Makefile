# One command per job. CI runs `make test` (see .ci/run), exactly as a user would.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv system-deps collector test test-oldest test-unit test-integration test-e2e lint fmt bench demo docs inventory clean

help:
	@echo "make demo   - whole local stack, load with a latency spike, then the investigation"
	@echo "make test   - the full suite (installs what it needs, starts its own servers)"
	@echo "make test-oldest - the library tests on the oldest FastAPI/OpenTelemetry allowed"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - side-by-side benchmarks (ratios, never pass/fail; bench.collector --full for the whole ladder)"
	@echo "make inventory - fault matrix on the real stack; re-record the signal inventory"

# Two distributions, one .venv: the library (every integration) and the tooling (the CLI).
$(STAMP): pyproject.toml tools/pyproject.toml tools/hatch_build.py otel/_internal/version.py
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]' -e 'tools[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

collector: venv
	$(VENV)/bin/trading-otel collector build

test: system-deps venv collector
	$(VENV)/bin/pytest tests
	$(PY) -m trading_otel_tools.oldest

# The library's tests again, in .venv-oldest: the oldest FastAPI and OpenTelemetry
# versions pyproject.toml allows (the main .venv holds the newest).
test-oldest: system-deps venv
	$(PY) -m trading_otel_tools.oldest

test-unit: venv
	$(VENV)/bin/pytest tests/unit

test-integration: system-deps venv collector
	$(VENV)/bin/pytest tests/integration

test-e2e: system-deps venv collector
	$(VENV)/bin/pytest tests/e2e

lint: venv
	$(VENV)/bin/ruff check otel tools services tests bench
	$(VENV)/bin/ruff format --check otel tools services tests bench
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format otel tools services tests bench
	$(VENV)/bin/ruff check --fix otel tools services tests bench

bench: system-deps venv collector
	$(PY) -m bench
	$(PY) -m bench.collector
	$(PY) -m bench.bench_collector_utf8
	$(PY) -m bench.spans
	$(PY) -m bench.bench_dead_collector --orders 500
	$(PY) -m bench.freshness

docs: venv
	$(VENV)/bin/trading-otel metrics list --markdown > docs/metrics.md
	$(PY) -m trading_otel_tools.alerts.latency --update docs/alerting.md
	$(PY) -m trading_otel_tools.inventory --docs
	$(PY) -m trading_otel_tools.cli.config_docs --update docs/configuration.md

# Run the fault matrix on the real stack and re-record tests/fixtures/signal_inventory.json
# (prints which names moved); about 8 minutes.
inventory: system-deps venv collector
	$(PY) -m trading_otel_tools.inventory

demo: system-deps venv collector
	$(VENV)/bin/trading-otel demo

clean:
	rm -rf $(VENV) .venv-oldest bin var .mypy_cache .ruff_cache .pytest_cache
