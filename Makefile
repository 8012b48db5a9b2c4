# Two commands on a fresh machine: `make synth`, then `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_HOME := $(CURDIR)/.cdk-home
export UV_PYTHON_DOWNLOADS := never

UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
# MWAA runs Airflow 3.3.1 on Python 3.12: both venvs use 3.12 (pyenv's, where the shim
# has no global version set).
PYTHON312 := $(or $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null),$(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12))))
export UV_PYTHON := $(PYTHON312)
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
OUT := cdk.out

.PHONY: help install synth test lint typecheck unit snapshots schema clean demo bench faults

help:
	@echo "make synth      install everything, synthesize every environment offline, print a summary"
	@echo "make test       lint, type-check and run the test suite"
	@echo "make snapshots  re-record the template snapshots (review the diff before committing)"
	@echo "make schema     regenerate schemas/job-manifest.schema.json"
	@echo "make demo       run the example jobs end to end on 127.0.0.1 (after make synth)"
	@echo "make bench      2,000 tasks at the top of the hour: the stock operator vs this platform"
	@echo "make faults     the fault matrix: each failure through a real Airflow, as a table"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# aws-cdk-lib and its dependency aws-cdk.cloud-assembly-schema both ship
# aws_cdk/cloud_assembly_schema/__init__.py; whichever uv installs last wins, and only
# aws-cdk-lib's copy works with aws-cdk-lib (cx_api refuses the other's structs).
CDK_LIB_VERSION := $(shell sed -n 's/.*"aws-cdk-lib==\([0-9.]*\)".*/\1/p' pyproject.toml)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (python3.12 or ~/.pyenv/versions/3.12.*)"; exit 2; }
	$(UV) sync --frozen
	$(UV) pip install --quiet --python $(PY) --reinstall --no-deps "aws-cdk-lib==$(CDK_LIB_VERSION)"
	@touch $@

# checkov pins boto3 1.35, which Airflow's Amazon provider cannot share: its own venv.
CHECKOV_PROJECT := tools/checkov
$(CHECKOV_PROJECT)/.venv/.synced: $(CHECKOV_PROJECT)/pyproject.toml $(CHECKOV_PROJECT)/uv.lock | $(UV)
	UV_PYTHON= $(UV) sync --frozen --project $(CHECKOV_PROJECT)
	@touch $@

# The harness's Airflow: MWAA's image for the configured version (config/airflow_versions.py).
MWAA_RUNTIME := runtime/mwaa-3.3.1
$(MWAA_RUNTIME)/.venv/.synced: $(MWAA_RUNTIME)/pyproject.toml $(MWAA_RUNTIME)/uv.lock | $(UV)
	$(UV) sync --frozen --project $(MWAA_RUNTIME)
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.synced $(CHECKOV_PROJECT)/.venv/.synced $(MWAA_RUNTIME)/.venv/.synced node_modules/.installed

synth: install
	@rm -rf $(OUT)
	$(CDK) synth --quiet --output $(OUT) > /dev/null
	$(PY) -m tools.synth_summary $(OUT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest

test: lint typecheck unit

snapshots: install
	$(VENV)/bin/pytest tests/cdk/test_snapshots.py --snapshot-update

schema: install
	$(PY) -c "import json, ml_platform.contract as m; print(json.dumps(m.json_schema(), indent=2))" > schemas/job-manifest.schema.json

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache

demo: install
	@test -f $(OUT)/manifests/dev.json || { echo "run 'make synth' first"; exit 2; }
	$(PY) -m simulator.demo --cdk-out $(OUT)

# BENCH_ARGS="--tasks 10000" for the large burst; see `python -m bench.burst --help`.
bench: install
	$(PY) -m bench.burst $(BENCH_ARGS)

faults: install
	@test -f $(OUT)/manifests/dev.json || { echo "run 'make synth' first"; exit 2; }
	$(PY) -m simulator.faults --cdk-out $(OUT)
