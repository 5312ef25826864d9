# Developer entry points for Kalam for Jupyter.
# Every target that needs Python first makes sure .venv exists and holds the
# project (editable) with its dev extras; the stamp is rebuilt whenever
# pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kalam-installed
# make lab keeps an existing $KALAM_DATA_DIR; otherwise notebooks share ./kalam-data.
KALAM_DATA_DIR ?= $(CURDIR)/kalam-data
PYTEST_WORKERS ?= 2
# A second kernel, "Python 3 (Kalam)", that loads kalam_magic at start-up.
# The stock python3 kernel is left alone so notebooks that run
# %load_ext kalam_magic themselves produce the same output everywhere.
KERNEL_DIR := $(VENV)/share/jupyter/kernels/kalam
SANITIZE := $(wildcard notebooks/sanitize.cfg)

.DEFAULT_GOAL := help
.PHONY: help install lab test lint format pytest nbval demo bench torture slt-full clean distclean

help:
	@echo "make lab    - install into .venv and start JupyterLab on notebooks/"
	@echo "make test   - lint (ruff, mypy), unit tests, then notebooks under nbval"
	@echo "make demo   - run a scripted engine session in a temporary data dir"
	@echo "make bench  - run the benchmarks (results in bench/results.md; BENCH_ARGS=--quick)"
	@echo "make torture - SIGKILL a writer at random moments; check every acknowledged write (TORTURE_ARGS=\"--cycles 300\")"
	@echo "make slt-full - SQLite's sqllogictest corpus in plain, flush and reopen modes (SLT_CORPUS=dir)"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make format - apply ruff format and safe ruff fixes"
	@echo "make clean  - remove caches and build output (keeps .venv and kalam-data)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(STAMP)

$(KERNEL_DIR)/kernel.json: $(STAMP)
	mkdir -p $(KERNEL_DIR)
	printf '%s\n' '{"display_name": "Python 3 (Kalam)", "language": "python",' \
	  ' "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}",' \
	  '          "--ext=kalam_magic"]}' > $@

lab: $(STAMP) $(KERNEL_DIR)/kernel.json
	mkdir -p "$(KALAM_DATA_DIR)"
	KALAM_DATA_DIR="$(KALAM_DATA_DIR)" $(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy engine kalam_magic

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest's exit status is passed straight through, so "no tests ran" (5)
# fails the build like any other failure.
pytest: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=10 tests/

# --dist loadscope keeps every cell of one notebook on one worker (one kernel).
nbval: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope \
	  --nbval --nbval-current-env $(if $(SANITIZE),--nbval-sanitize-with $(SANITIZE)) notebooks/

test: lint pytest nbval

demo: $(STAMP)
	$(PY) -m engine.demo

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

# Not part of make test (tests/test_torture.py runs a 20-cycle version there).
torture: $(STAMP)
	$(PY) bench/torture.py $(TORTURE_ARGS)

# SQLite's sqllogictest corpus (~1 GB, so not in the repository; make test runs
# the sample in tests/slt/sqlite/). Fetch it once, by hand, where the network is
# reachable:  git clone --depth 1 https://github.com/gregrahn/sqllogictest <dir>
# then:       make slt-full SLT_CORPUS=<dir>/test
# SLT_FILES narrows the run (e.g. SLT_FILES="select1.test random/expr").
SLT_CORPUS ?= tests/slt/sqlite
SLT_FILES ?= .
SLT_MODES ?= plain flush reopen
slt-full: $(STAMP)
	@test -d "$(SLT_CORPUS)" || { echo "SLT_CORPUS=$(SLT_CORPUS) is not a directory (see the Makefile comment)"; exit 2; }
	@status=0; for mode in $(SLT_MODES); do \
	  case $$mode in plain) flags="";; flush) flags="--flush-every-statement";; reopen) flags="--reopen-every 25";; esac; \
	  (cd "$(SLT_CORPUS)" && $(abspath $(PY)) $(CURDIR)/tests/slt_runner.py $(SLT_FILES) $$flags \
	    --failures 5) > "slt-full-$$mode.log" 2>&1 || status=1; \
	  grep -E '^(TOTAL|[^ ].*passed)' "slt-full-$$mode.log"; \
	done; echo "details: slt-full-<mode>.log"; exit $$status

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/_work slt-full-*.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
