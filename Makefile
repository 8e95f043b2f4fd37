# Interplay: `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(PY) -m trainers.supervised --config trainers/configs/supervised.py:digits --workdir demo_out/digits

test: venv
	$(PY) -m pytest -q -n 2

bench: venv
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/grokking.py
	$(PY) benchmarks/analysis.py

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis
