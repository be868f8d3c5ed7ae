# Two commands do all the set-up: `make run` and `make test` create (or reuse) .venv,
# install torch first (its CPU wheel), then the pinned environment and the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test verify dry-run lint clean

$(STAMP): pyproject.toml envs/requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# `sbi-core validate` first: Snakemake reads a --configfile before the workflow's checks,
# and says of a YAML error neither the file nor the line.
run: $(STAMP)
	$(BIN)/sbi-core validate config/config.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml

# Rerun every reference analysis in config/analyses/ (those with a <name>.expected.yaml)
# from scratch and print a pass/fail table against the stored numbers; exit 1 if any differ.
verify: $(STAMP)
	$(BIN)/sbi-core verify --rerun --cores $(CORES) $(wildcard config/analyses/*.expected.yaml)

dry-run: $(STAMP)
	$(BIN)/sbi-core validate config/config.yaml
	$(BIN)/snakemake -n --cores $(CORES) --configfile config/config.yaml

# Two pytest workers, one per core of the CI machine; each module runs whole on one worker
# (tests/conftest.py). TEST_WORKERS=0 runs the tests in this process, one after the other.
TEST_WORKERS ?= 2

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
