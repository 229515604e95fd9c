# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench docs clean setup

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sparsim demo

# All tests, including the ones marked slow (end-to-end and RTL; plain `pytest` skips those), but not the
# benchmarks that docs pages show (marked bench: `make bench` runs them).
# Two processes (pytest-xdist; the tests are CPU-bound and isolated, the RTL builds that share a folder
# run on one of them: tests/conftest.py); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -m "not bench" -n $(TEST_WORKERS) --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest

# Re-measure: each script prints its tables and writes them into docs/benchmarks/generated/ (commit them).
bench: $(STAMP)
	$(PY) benchmarks/run_all.py
	$(PY) -m pytest -m bench -p no:cacheprovider tests/test_docs.py

# The documentation site, into site/ (open site/index.html); --strict: a warning (broken link, missing page) fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf build dist site *.egg-info .pytest_cache sim_build* hdl/build
	find . -name __pycache__ -prune -exec rm -rf {} +
