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
# Port of the background `kalam serve` (0: a free one; clients find it in server.json).
KALAM_PORT ?= 0
PYTEST_WORKERS ?= 2
# A second kernel, "Python 3 (Kalam)", that loads kalam_magic at start-up.
# The stock python3 kernel is left alone so notebooks that run
# %load_ext kalam_magic themselves produce the same output everywhere.
KERNEL_DIR := $(VENV)/share/jupyter/kernels/kalam
SANITIZE := $(wildcard notebooks/sanitize.cfg)

.DEFAULT_GOAL := help
.PHONY: help install lab serve stop-server test lint format pytest nbval browser browser-deps demo bench torture slt-full clean distclean

help:
	@echo "make lab    - install into .venv, start (or reuse) a kalam serve for KALAM_DATA_DIR, then JupyterLab"
	@echo "make serve  - start (or reuse) the background kalam serve for KALAM_DATA_DIR"
	@echo "make stop-server - stop that server (SIGTERM: in-flight statements finish)"
	@echo "make test   - lint (ruff, mypy), unit tests, notebooks under nbval, then the browser suite"
	@echo "make browser - run every notebook in JupyterLab in chromium and check the page"
	@echo "make demo   - run a scripted engine session in a temporary data dir"
	@echo "make bench  - run the benchmarks (results in bench/results.md; BENCH_ARGS=--quick)"
	@echo "make torture - SIGKILL a writer at random moments; check every acknowledged write (TORTURE_ARGS=\"--cycles 300\")"
	@echo "make slt-full - SQLite's sqllogictest corpus in plain, flush and reopen modes (SLT_CORPUS=dir SLT_ARGS=...; results: tests/slt/README.md)"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make format - apply ruff format and safe ruff fixes"
	@echo "make clean  - remove caches and build output (keeps .venv and kalam-data)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(STAMP)

# kalam_magic/kernelspec.py says why it loads the extension through exec_lines.
$(KERNEL_DIR)/kernel.json: $(STAMP) kalam_magic/kernelspec.py
	$(PY) -m kalam_magic.kernelspec $(KERNEL_DIR)

# Every kernel opening $(KALAM_DATA_DIR) connects to this server, so notebooks
# share the directory; the server keeps running after JupyterLab exits
# (make stop-server). Its pid and log: $(KALAM_DATA_DIR)/kalam-serve.{pid,log}.
serve: $(STAMP)
	$(PY) -m engine.serverctl start --data-dir "$(KALAM_DATA_DIR)" --port $(KALAM_PORT)

stop-server: $(STAMP)
	$(PY) -m engine.serverctl stop --data-dir "$(KALAM_DATA_DIR)"

lab: serve $(KERNEL_DIR)/kernel.json
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
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=10 --ignore=tests/browser tests/

# --dist loadscope keeps every cell of one notebook on one worker (one kernel).
nbval: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope \
	  --nbval --nbval-current-env $(if $(SANITIZE),--nbval-sanitize-with $(SANITIZE)) notebooks/

# Debian's chromium for the browser suite (Playwright's own download is not
# used): installed with apt-get only when missing and when we may.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get install -y chromium || { sudo apt-get update && sudo apt-get install -y chromium; }; \
	  else \
	    echo "chromium is missing: install it (e.g. apt-get install chromium)"; exit 1; \
	  fi; }

# JupyterLab in a real browser; one server and one page for the whole run, so
# no -n. The suite needs no other pytest plugin than pytest-timeout, nor the
# fixtures of tests/conftest.py: skipping their imports saves 10-20 s here.
browser: $(STAMP) browser-deps
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(PY) -m pytest -p pytest_timeout \
	  --confcutdir=tests/browser --durations=5 tests/browser

test: lint pytest nbval browser

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
# SLT_FILES narrows the run (e.g. SLT_FILES="select1.test random/expr");
# SLT_ARGS samples it (e.g. SLT_ARGS="--sample-every 13 --max-queries 300":
# every 13th file of each directory, its first 300 queries). The last
# measured run and its failure classes: tests/slt/README.md.
SLT_CORPUS ?= tests/slt/sqlite
SLT_FILES ?= .
SLT_MODES ?= plain flush reopen
SLT_ARGS ?=
slt-full: $(STAMP)
	@test -d "$(SLT_CORPUS)" || { echo "SLT_CORPUS=$(SLT_CORPUS) is not a directory (see the Makefile comment)"; exit 2; }
	@status=0; for mode in $(SLT_MODES); do \
	  case $$mode in plain) flags="";; flush) flags="--flush-every-statement";; reopen) flags="--reopen-every 25";; esac; \
	  (cd "$(SLT_CORPUS)" && $(abspath $(PY)) $(CURDIR)/tests/slt_runner.py $(SLT_FILES) $$flags \
	    $(SLT_ARGS) --failures 5) > "slt-full-$$mode.log" 2>&1 || status=1; \
	  grep -E '^(TOTAL|[^ ].*passed|  (failure|unsupported) class)' "slt-full-$$mode.log"; \
	done; echo "details: slt-full-<mode>.log"; exit $$status

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/_work slt-full-*.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
