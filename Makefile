# The two commands of the README: `make up STACK=dev` deploys, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: up preview deps test lint check-stacks demo images clean

# What the Pulumi program needs (requirements.txt), nothing else: `make up`/`make preview` and the
# CI preview job install exactly this. Reinstalled only when requirements.txt changed.
$(VENV)/.program: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

# Everything `make test` needs: the program, both runtimes and the test toolchain.
$(VENV)/.installed: requirements.txt requirements-dev.txt runtime/requirements.txt $(wildcard runtime/*/requirements.txt)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.program

deps: $(VENV)/.program

# The CLI and the stack file are checked before anything is installed, so a missing one is said at
# once; then only the program's requirements go into the virtualenv.
up preview:
	@STACK=$(STACK) scripts/pulumi-stack.sh check
	@$(MAKE) --no-print-directory deps
	@STACK=$(STACK) VENV=$(VENV) scripts/pulumi-stack.sh $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

# Validates every stack file and prints what it would declare, under the mock engine (no CLI needed).
check-stacks: $(VENV)/.program
	@for f in stacks/Pulumi.*.yaml; do \
		s=$${f#stacks/Pulumi.}; s=$${s%.yaml}; \
		echo "== $$s"; $(BIN)/python -m components.check "$$s" || exit 1; \
	done

# The local end-to-end run: emulator, OSS target and relay on 127.0.0.1, the COS handler from its zip.
demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

# Both runtime images, with docker or else buildah (scripts/build-images.sh says which and why not).
images:
	@scripts/build-images.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
