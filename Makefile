# Build, test and demo entry points. See README.md.
#
#   make venv                 create .venv and install the project (editable)
#   make sao                  install the sao web client into var/sao
#   make demo                 demo database + trytond/sao on http://localhost:8000
#   make test [DB=postgresql] run all test suites (default DB=sqlite)
#   make bench [N=10000]      run the benchmark
#   make bench-portal [N=10000] 50 customers on the portal's pages (PostgreSQL)
#   make clean                remove var/ and .venv/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DB ?= sqlite
N  ?= 10000

.DEFAULT_GOAL := help
.PHONY: help venv sao demo test bench bench-portal clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

# Re-install only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test,postgresql]'
	touch $@

sao:
	scripts/install-sao.sh

demo: venv sao
	$(PY) demo/run_demo.py

test: venv sao
	scripts/run-tests.sh $(DB)

bench: venv
	$(PY) -O bench/run.py --n $(N)

bench-portal: venv
	$(PY) -O bench/portal.py --n $(N)

clean:
	rm -rf var $(VENV)
