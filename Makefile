# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench clean setup

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sparsim demo

# All tests, including the ones marked slow (end-to-end and RTL); plain `pytest` skips those.
test: $(STAMP)
	$(PY) -m pytest -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build dist *.egg-info .pytest_cache sim_build* hdl/build
	find . -name __pycache__ -prune -exec rm -rf {} +
