# platonic-mlip: the two commands that matter are `make demo` and `make test`.
PYTHON ?= python3
VENVS ?= .venvs
CORES ?= all
BIN := $(VENVS)/analysis/bin
SNAKEMAKE := $(BIN)/python -m snakemake --config 'envs={venv_dir: $(abspath $(VENVS))}'
FAMILIES := $(shell $(PYTHON) envs/venvs.py families)
export PLATONIC_VENVS := $(abspath $(VENVS))

.PHONY: help envs demo run paper paper-slurm report test test-core test-families lint format lock clean-demo

help:
	@echo "make demo     create the environments and run the study on the bundled MP-20 sample"
	@echo "make test     create the environments and run the whole test suite"
	@echo "make run CONFIG=my.yaml  run the study with your config (start from config/example.yaml)"
	@echo "make paper    run the full paper (config/config.yaml; needs internet and GPUs)"
	@echo "make paper-slurm  the same, submitted to SLURM (fill in profiles/slurm/config.yaml first)"
	@echo "make report   HTML report of the demo run (results/demo/report.html)"
	@echo "make envs     create/update the virtualenvs (.venvs/analysis and one per model family: $(FAMILIES))"
	@echo "make lock     re-resolve the environments and rewrite envs/locks/*.txt"

envs:
	$(PYTHON) envs/venvs.py create

demo: envs
	$(SNAKEMAKE) --cores $(CORES) --configfile config/demo.yaml

run: envs
	@test -n "$(CONFIG)" || { echo "usage: make run CONFIG=path/to/config.yaml (see config/example.yaml)"; exit 2; }
	$(SNAKEMAKE) --cores $(CORES) --configfile $(CONFIG)

paper: envs
	$(SNAKEMAKE) --cores $(CORES) --configfile config/config.yaml

paper-slurm: envs
	$(SNAKEMAKE) --workflow-profile profiles/slurm --configfile config/config.yaml

report: envs
	$(SNAKEMAKE) --cores 1 --configfile config/demo.yaml --report results/demo/report.html

test: envs
	PLATONIC_REQUIRE_ENVS=1 $(BIN)/python -m pytest tests --ignore=tests/families -ra
	set -e; for f in $(FAMILIES); do \
	  echo "== model family $$f"; \
	  py=$$($(PYTHON) envs/venvs.py python $$($(PYTHON) envs/venvs.py env-of $$f)); \
	  PLATONIC_FAMILY=$$f $$py -m pytest tests/families/test_contract.py $$(ls tests/families/test_$$f.py tests/families/test_$${f}_*.py 2>/dev/null) -ra; \
	done

lint: envs
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/snakefmt --check Snakefile workflow/rules
	$(SNAKEMAKE) --lint

format: envs
	$(BIN)/ruff check --fix . && $(BIN)/ruff format . && $(BIN)/snakefmt Snakefile workflow/rules

lock:
	$(PYTHON) envs/venvs.py lock

clean-demo:
	rm -rf results/demo
