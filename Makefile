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

.PHONY: help install synth test lint typecheck unit snapshots schema clean demo bench faults \
	bench-catalog containers \
	diff deploy check-env

help:
	@echo "make synth      install everything, synthesize every environment offline, print a summary"
	@echo "make test       lint, type-check and run the test suite"
	@echo "make snapshots  synth, then re-record the template snapshots (review the diff, commit"
	@echo "                  it with jobs/stacks.json)"
	@echo "make schema     regenerate schemas/job-manifest.schema.json"
	@echo "make demo       run the example jobs end to end on 127.0.0.1 (after make synth)"
	@echo "                  JOB=<name>  PARTITIONS=<n, or values a,b,c>  RETRIES=<n, default 0>"
	@echo "                  BACKEND=self-hosted: on the self-hosted Airflow image's containers"
	@echo "                  and PostgreSQL (the prod environment) instead of MWAA's runtime"
	@echo "make faults     the fault matrix: each failure through a real Airflow, as a table"
	@echo "make bench      2,000 tasks at the top of the hour: the stock operator vs this platform"
	@echo "                  BENCH_ARGS='--tasks 10000 --paths platform' (see --help)"
	@echo "make bench-catalog  1,000 jobs as 10 groups and as 1: synth time, memory, stack sizes,"
	@echo "                  Airflow's policy size, DAG parse (CATALOG_ARGS='--jobs 2000')"
	@echo "make diff ENV=dev    what a deploy of the environment would change (AWS credentials)"
	@echo "make deploy ENV=dev  deploy the environment's stacks (AWS credentials, a container engine)"
	@echo "make containers  a container engine (podman, or CONTAINER_ENGINE=docker) and the model"
	@echo "                  images; make demo, faults and test run the models as containers"
	@echo "make install    only install the tools; make clean  remove cdk.out and caches"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# aws-cdk-lib and its dependency aws-cdk.cloud-assembly-schema both ship
# aws_cdk/cloud_assembly_schema/__init__.py; whichever uv installs last wins, and only
# aws-cdk-lib's copy works with aws-cdk-lib (cx_api refuses the other's structs).
CDK_LIB_VERSION := $(shell sed -n 's/.*"aws-cdk-lib==\([0-9.]*\)".*/\1/p' pyproject.toml)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (python3.12 or ~/.pyenv/versions/3.12.*)"; exit 2; }
	$(UV) sync --frozen --quiet
	$(UV) pip install --quiet --python $(PY) --reinstall --no-deps "aws-cdk-lib==$(CDK_LIB_VERSION)"
	@touch $@

# checkov pins boto3 1.35, which Airflow's Amazon provider cannot share: its own venv.
CHECKOV_PROJECT := tools/checkov
$(CHECKOV_PROJECT)/.venv/.synced: $(CHECKOV_PROJECT)/pyproject.toml $(CHECKOV_PROJECT)/uv.lock | $(UV)
	UV_PYTHON= $(UV) sync --frozen --quiet --project $(CHECKOV_PROJECT)
	@touch $@

# The harness's Airflow: MWAA's image for the configured version (config/airflow_versions.py).
MWAA_RUNTIME := runtime/mwaa-3.3.1
$(MWAA_RUNTIME)/.venv/.synced: $(MWAA_RUNTIME)/pyproject.toml $(MWAA_RUNTIME)/uv.lock | $(UV)
	$(UV) sync --frozen --quiet --project $(MWAA_RUNTIME)
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error --silent
	@touch $@

install: $(VENV)/.synced $(CHECKOV_PROJECT)/.venv/.synced $(MWAA_RUNTIME)/.venv/.synced node_modules/.installed

# cdk.out is replaced only by a whole, accepted synth: a refused one (a bad declaration,
# a cdk-nag finding) leaves the last good cdk.out in place, and its own output (the
# validation report) in cdk.out.next/. The CLI's chatter is dropped: where it wrote the
# assembly (cdk.out.next, about to move), and its reminder of the feature flags this app
# leaves at their defaults (stacks/platform_app.py pins those it relies on).
CDK_NOISE := feature flags are not configured|^Successfully synthesized to|^Supply a stack id

synth: install
	@rm -rf $(OUT).next
	@set -o pipefail; { $(CDK) synth --quiet --output $(OUT).next 2>&1 >/dev/null \
		| { grep -Ev "$(CDK_NOISE)" || true; } >&2; } || { \
		echo "synth refused; the last good synth is still in $(OUT)/" >&2; exit 1; }
	@rm -rf $(OUT) && mv $(OUT).next $(OUT)
	@$(PY) -m tools.synth_summary $(OUT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every model under models/: a folder holding a package of its own name.
MODELS := $(notdir $(patsubst %/,%,$(dir $(wildcard models/*/*/__init__.py))))
space := $(subst ,, )
MODELS_PATH := $(subst $(space),:,$(strip models $(addprefix models/,$(MODELS))))

typecheck: install
	$(VENV)/bin/mypy
	MYPYPATH=$(MODELS_PATH) $(VENV)/bin/mypy -p model_contract \
		$(addprefix -p ,$(MODELS))

# The model images run as containers (simulator/containers.py): podman with runc, and
# debootstrap for a base made from Debian's packages, installed when absent (as root);
# CONTAINER_ENGINE=docker uses Docker instead. Then the base and every model's image;
# the engine caches them, so a second run takes seconds.
CONTAINER_TOOLS := podman runc debootstrap
containers: install
	@if [ "$(CONTAINER_ENGINE)" != docker ] && \
		[ "$$(command -v $(CONTAINER_TOOLS) | wc -l)" != 3 ]; then \
		test "$$(id -u)" = 0 || { echo "install $(CONTAINER_TOOLS) (Debian packages), or set" \
			"CONTAINER_ENGINE=docker" >&2; exit 2; }; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $(CONTAINER_TOOLS) >/dev/null 2>&1 || { apt-get update -q >/dev/null \
			&& apt-get install -y -q $(CONTAINER_TOOLS) >/dev/null; }; \
	fi
	@$(PY) -m simulator.containers

unit: install containers
	$(VENV)/bin/pytest --durations=12  # the slowest tests: the suite must stay under 20 min

test: lint typecheck unit

# After a synth: it records the stack of each new job (jobs/stacks.json), which the
# snapshots show.
snapshots: synth
	$(VENV)/bin/pytest tests/cdk/test_snapshots.py --snapshot-update

schema: install
	$(PY) -c "import json, ml_platform.contract as m; print(json.dumps(m.json_schema(), indent=2))" > schemas/job-manifest.schema.json

clean:
	rm -rf $(OUT) $(OUT).next .pytest_cache .mypy_cache .ruff_cache

demo: install containers
	@test -f $(OUT)/manifests/dev.json || { echo "run 'make synth' first"; exit 2; }
	$(PY) -m simulator.demo --cdk-out $(OUT) $(if $(JOB),--job $(JOB)) \
		$(if $(PARTITIONS),--partitions '$(PARTITIONS)') $(if $(RETRIES),--retries $(RETRIES)) \
		$(if $(BACKEND),--backend $(BACKEND))

# BENCH_ARGS="--tasks 10000" for the large burst; see `python -m bench.burst --help`.
bench: install
	$(PY) -m bench.burst $(BENCH_ARGS)

bench-catalog: install
	$(PY) -m bench.catalog $(CATALOG_ARGS)

faults: install containers
	@test -f $(OUT)/manifests/dev.json || { echo "run 'make synth' first"; exit 2; }
	$(PY) -m simulator.faults --cdk-out $(OUT)

# Deploy one environment (config/environments.py) with the credentials of the shell
# (AWS_PROFILE or keys); model images are built by Docker, or CDK_DOCKER=podman.
ENVIRONMENTS := $(shell sed -n 's/^    name="\([a-z0-9]*\)",/\1/p' config/environments.py)

check-env:
	@test -n "$(ENV)" -a -n "$(filter $(ENV),$(ENVIRONMENTS))" || { \
		echo "ENV must be one of: $(ENVIRONMENTS) (e.g. make deploy ENV=dev)" >&2; exit 2; }

diff: check-env synth
	$(CDK) diff --app $(OUT) '$(ENV)/*'

deploy: check-env synth
	$(CDK) deploy --app $(OUT) '$(ENV)/*' --require-approval broadening
