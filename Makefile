# Everything a fresh clone needs, from the package registries only. `make demo` and `make test` do all
# the set-up themselves; the other targets are for working on the project.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# anvil, forge and cast come from npm; ape-foundry and the SDK look for them on PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)

.PHONY: setup compile test fuzz demo tour bench devnet-up devnet-down clean distclean

setup: $(VENV)/.installed node_modules/.installed
	@# Registers the npm compiler with py-solc-x. It runs every time (idempotent, well under a second):
	@# the registration lives in py-solc-x's shared folder and must point at this checkout's node_modules.
	@$(BIN)/python -m carbon_sdk.toolchain

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# `npm install` (not `npm ci`): the lock pins every version, but anvil's binaries for other platforms are not
# published to the registry, so the lock cannot list them and `npm ci` would refuse it as out of sync.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

compile: setup
	$(BIN)/ape compile

test: compile
	$(BIN)/ruff check carbon_sdk tests scripts
	$(BIN)/python -m pytest

# The deep forge campaign (foundry.toml [profile.deep], ~1,000,000 handler calls). `make test` runs the short
# `ci` profile through tests/fuzz/test_forge_campaigns.py. forge compiles with the wrapper `setup` registers
# (its path, version included, from carbon_sdk.toolchain: the same one the tests use).
fuzz: setup
	FOUNDRY_PROFILE=deep FOUNDRY_SOLC="$$($(BIN)/python -m carbon_sdk.toolchain --print-path)" forge test

demo: compile
	$(BIN)/python scripts/demo.py

tour: compile
	$(BIN)/python scripts/tour.py

bench: compile
	$(BIN)/python scripts/bench.py

devnet-up: compile
	$(BIN)/carbon devnet up

devnet-down: setup
	$(BIN)/carbon devnet down

clean:
	rm -rf .build contracts/.cache .pytest_cache demo-report out/forge out/forge-cache

distclean: clean
	rm -rf $(VENV) node_modules
