# The commands the README shows. Each target sets up what it needs (a virtualenv in .venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## demo: set up and run the main job (shub-pay demo: SQLite file shub_pay_demo.db, in-process sandbox)
demo: $(STAMP)
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
