# Two entry points that work on a fresh machine: `make validate` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: validate test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

validate: $(STAMP)
	$(BIN)/cldro validate --quick --out runs/quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The default run includes the fault tier (marker `faults`); a run that collects no test fails
# (pytest exits 5), and so does an unknown marker (--strict-markers in pyproject.toml).
test: lint
	$(BIN)/pytest

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
