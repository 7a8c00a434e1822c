# The two commands of the README: `make up STACK=dev` deploys, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: up preview test lint check-stacks demo clean

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt runtime/requirements.txt $(wildcard runtime/*/requirements.txt)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

up: $(VENV)/.installed
	@STACK=$(STACK) VENV=$(VENV) scripts/pulumi-stack.sh up

preview: $(VENV)/.installed
	@STACK=$(STACK) VENV=$(VENV) scripts/pulumi-stack.sh preview

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

# Validates every stack file and prints what it would declare, under the mock engine (no CLI needed).
check-stacks: $(VENV)/.installed
	@for f in stacks/Pulumi.*.yaml; do \
		s=$${f#stacks/Pulumi.}; s=$${s%.yaml}; \
		echo "== $$s"; $(BIN)/python -m components.check "$$s" || exit 1; \
	done

# The local end-to-end run: emulator, OSS target and relay on 127.0.0.1, the COS handler from its zip.
demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
