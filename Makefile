# The developer entry points. `make setup` once, then `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup lint typecheck test crds

setup:
	bash .ci/setup

lint:
	$(BIN)/ruff check operator tests
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

crds:
	$(BIN)/modelyard crds generate --out crds

test: lint typecheck
	$(BIN)/pytest -q
