# The developer entry points: `make demo` (set up, then the quickstart), `make test-fast` (the edit
# loop: no control plane, no model) and `make test` (the full suite CI runs).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo demo-down lint typecheck test test-fast crds

setup:
	bash .ci/setup

# A local cluster, the Helm chart, a tiny chat model and MiniLM, and an OpenAI call through the
# gateway (docs/quickstart.md). Re-running reuses the cluster; `make demo-down` stops it.
demo: setup
	$(BIN)/modelyard quickstart

demo-down:
	$(BIN)/modelyard local down --name quickstart

lint:
	$(BIN)/ruff check operator tests
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

crds:
	$(BIN)/modelyard crds generate --out crds

test: lint typecheck
	$(BIN)/pytest -q

# Markers come from the fixtures a test uses (tests/conftest.py); `slow` ones are left out too.
test-fast: lint
	$(BIN)/pytest -q -m "not cluster and not model and not slow"
