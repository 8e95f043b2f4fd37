# Interplay: `make demo` and `make test` set up .venv themselves, from uv.lock.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
# pip's notes about index locations configured on this machine but absent are not problems.
QUIET := { grep -v "is neither a file nor a directory" || true; }

.PHONY: venv lock demo test test-slow bench lint clean

venv: $(STAMP)

# The locked versions (uv.lock), the project itself editable, uv kept beside them (--inexact).
$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2>&1 | $(QUIET)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --inexact --extra dev
	touch $(STAMP)

# Re-resolve uv.lock from pyproject.toml (newest versions within its bounds).
lock: venv
	$(UV) lock --upgrade

demo: venv
	$(PY) -m interplay.trainers.supervised --config interplay/trainers/configs/supervised.py:digits --workdir demo_out/digits

test: venv
	$(PY) -m pytest -q -n 2 --dist loadgroup

# The long runs that `make test` leaves out (multi-process restarts, large models); CI runs both.
test-slow: venv
	$(PY) -m pytest -q -n 2 --dist loadgroup -m slow

bench: venv
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/grokking.py
	$(PY) benchmarks/analysis.py
	$(PY) benchmarks/exact_dual.py
	$(PY) benchmarks/eigvalsh.py
	$(PY) benchmarks/semisupervised.py

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis
