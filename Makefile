# The two commands of the README: `make reproduce` and `make test`.
# Both create .venv if it is missing and install the pinned stack first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ccrk-installed
CONFIG ?= config/config.yaml
PYTEST_ARGS ?=

# Nothing in this suite may reach a model hub or phone home at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
# Rules call the `ccrk` command: make the venv's one the first on the PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install reproduce budget synth tokenizer test test-slurm slurm-up slurm-down lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[test,open_clip]'
	touch $@

## The main job on the embedded default: the Snakemake DAG (profiles/default).
reproduce: install
	$(BIN)/snakemake --configfile $(CONFIG)

## The budget study (outside `reproduce`): the same comparison at three pre-training lengths
## (config/budget.yaml); the default's own length reuses what `reproduce` built.
budget: install
	$(BIN)/snakemake -s workflow/budget.smk --configfile $(CONFIG) config/budget.yaml

## The suite without the tests that need a running Slurm.
test: install
	$(BIN)/python -m pytest -q -n 2 -m "not slurm" $(PYTEST_ARGS)

## The tests marked `slurm`, against a real single-node Slurm on localhost (root; Debian packages).
## One at a time: they share the cluster's two CPUs and two fake GPUs.
test-slurm: install slurm-up
	CCRK_REQUIRE_SLURM=1 $(BIN)/python -m pytest -q -p no:xdist -m slurm $(PYTEST_ARGS)

slurm-up:
	tests/slurm/local-slurm.sh start

slurm-down:
	tests/slurm/local-slurm.sh stop

## Re-pin requirements/lock.txt from the current environment.
lock: install
	{ echo "# Exact versions the suite is tested with (Python 3.11, CPU). Used as a pip constraints file:"; \
	  echo "#   pip install -c requirements/lock.txt -e '.[test,open_clip]'"; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^ccrk'; } > requirements/lock.txt

clean:
	rm -rf resources .snakemake report.html
