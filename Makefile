# The commands the README shows. Each target sets up what it needs (a virtualenv in .venv):
# `make demo` installs shub-pay and its runtime dependencies only; `make test` and `make lint`
# add the test and lint tools (the `test` extra). Each install has its own stamp file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# shub-pay and what it needs to run.
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

# shub-pay, its runtime dependencies and the test and lint tools.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP) $(RUNTIME_STAMP)

## demo: set up and run the main job (shub-pay demo: SQLite file shub_pay_demo.db, in-process sandbox)
demo: $(RUNTIME_STAMP)
	$(BIN)/shub-pay demo

## test: set up and run the whole suite (SQLite and a throwaway PostgreSQL)
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff (lint and format) and mypy --strict on the package
lint: $(STAMP)
	$(BIN)/ruff check shub_pay tests bench
	$(BIN)/ruff format --check shub_pay tests bench
	$(BIN)/mypy --strict shub_pay

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
