# Two commands on a fresh Debian machine with Python 3.11:
#   make run    installs everything (system packages, .venv) and launches the app
#   make test   installs everything and runs the whole test suite (what CI runs)
# Both are idempotent: the venv in .venv is re-used while pyproject.toml is unchanged.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps lint bench bench-sae bundle clean

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

# SAE training speed against SAELens and dictionary_learning (in their own venv, .venv-bench, with
# .venv's torch version), then resident memory training from a 10 M x 128 disk store (about 5 GB in
# /tmp, deleted afterwards). Figures and how to read them: benchmarks/RESULTS.md
BENCH_VENV := .venv-bench
bench-sae: setup $(BENCH_VENV)/.installed
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_sae_train.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_sae_train.py --memory --dim 128 --steps 3000

$(BENCH_VENV)/.installed: benchmarks/requirements-peers.txt
	test -x $(BENCH_VENV)/bin/python || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q "torch==$$($(BIN)/python -c 'import torch; print(torch.__version__.split("+")[0])')" -r benchmarks/requirements-peers.txt
	touch $@

# Desktop bundle (PyInstaller, one folder, CPU torch) in build/bundle; smoke test: packaging/smoke_bundle.sh
bundle: system-deps
	sh packaging/build_bundle.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
