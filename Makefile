# Two commands on a fresh Debian machine with Python 3.11:
#   make run    installs everything (system packages, .venv) and launches the app
#   make test   installs everything and runs the whole test suite (what CI runs)
# Both are idempotent: the venv in .venv is re-used while pyproject.toml is unchanged.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps lint bench clean

run: setup
	$(BIN)/workbench gui

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/ruff check workbench tests benchmarks scripts
	$(BIN)/mypy workbench/core
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

setup: system-deps $(STAMP)

system-deps:
	@sh scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

bench: setup
	$(BIN)/python benchmarks/bench_codec.py

clean:
	rm -rf $(VENV) build dist *.egg-info
