# nbharden developer tasks (GNU make). On a fresh machine with only Python >= 3.11:
#
#   make demo    convert notebooks/churn_analysis.ipynb into build/demo, run the package and its tests
#   make test    the whole test suite
#
# Extending the install: `deps` is the one target every task depends on. A folder that needs more than the venv
# (a JupyterLab front end, a browser for UI tests) adds its own stamp-file rule and hangs it on `deps`, either
# here or in a fragment `mk/<name>.mk` (included below), e.g.
#
#   deps: $(VENV)/.labext-installed
#   $(VENV)/.labext-installed: $(STAMP) lab/package.json
#   	cd lab && npm ci && ...
#   	touch $@
#
# Make merges the prerequisites of every `deps:` line, so fragments never have to edit this file.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

VENV := .venv
PY := $(VENV)/bin/python
# Written after a complete install; rebuilt only when pyproject.toml is newer.
STAMP := $(VENV)/.nbharden-installed
# Leave empty to take the first of python3.13, python3.12, python3.11, python3 that is >= 3.11.
PYTHON ?=

DEMO_NB := notebooks/churn_analysis.ipynb
DEMO_OUT := build/demo
PYTEST_ARGS ?=

.PHONY: help venv .venv deps demo test test-fast lint bench clean distclean

help: ## show the targets
	@grep -hE '^[a-zA-Z_. -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

venv .venv: $(STAMP) ## create .venv and install nbharden with its test and orchestrators extras

# pyenv installs shims for versions that are not active and fail when run, so each candidate is tried, not just found.
$(STAMP): pyproject.toml
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for p in python3.13 python3.12 python3.11 python3; do \
	    if command -v "$$p" >/dev/null 2>&1 && \
	       "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then py=$$p; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then echo "make: no Python >= 3.11 found (set PYTHON=/path/to/python3.11)" >&2; exit 2; fi; \
	if [ -e $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "make: $(VENV) is broken or older than Python 3.11; recreating it" >&2; rm -rf $(VENV); \
	fi; \
	if [ ! -e $(PY) ]; then echo "creating $(VENV) with $$py ($$("$$py" --version))"; "$$py" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,orchestrators]'
	@# papermill and nbconvert look kernels up by name: give the venv its own "python3" so a notebook never runs
	@# in some other interpreter found on the machine.
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

deps: $(STAMP) ## everything the tasks need (other folders add their install steps here)

demo: deps ## convert the demo notebook into build/demo, then run the package and its tests
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/nbharden convert $(DEMO_NB) --out $(DEMO_OUT)
	@# The package name is the converter's choice: take the one package under src/.
	@pkgs=( $(DEMO_OUT)/src/*/__init__.py ); \
	if [ ! -e "$${pkgs[0]}" ]; then echo "make demo: no package under $(DEMO_OUT)/src" >&2; exit 1; fi; \
	pkg=$$(basename "$$(dirname "$${pkgs[0]}")"); \
	echo "+ cd $(DEMO_OUT) && python -m $$pkg"; \
	cd $(DEMO_OUT) && PYTHONPATH=src ../../$(PY) -m "$$pkg"; \
	if [ -d tests ]; then echo "+ cd $(DEMO_OUT) && python -m pytest -q"; ../../$(PY) -m pytest -q; fi

# Coverage gate of `make test`: line coverage of these files (coverage's --include patterns) must reach
# COV_FAIL_UNDER percent. Running a subset (PYTEST_ARGS=tests/test_x.py) measures less: add COV_FAIL_UNDER=0.
COV_GATE := */nbharden/load.py,*/nbharden/write.py,*/nbharden/lab/*
COV_FAIL_UNDER ?= 90

test: deps ## run the whole test suite (pytest) with coverage; fails if a test fails or COV_GATE is below 90%
	@rm -rf build/coverage
	@rc=0; COVERAGE_FILE=$(CURDIR)/build/coverage/.coverage $(PY) -m pytest --cov --cov-report= $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure, not a pass" >&2; exit 1; fi; \
	echo "--- coverage (files below 100%; config in pyproject.toml [tool.coverage.*])"; \
	$(PY) -m coverage report || true; \
	echo "--- coverage gate: $(COV_GATE) at >= $(COV_FAIL_UNDER)% of lines"; \
	gate=0; $(PY) -m coverage report --include='$(COV_GATE)' --no-skip-covered \
	  --fail-under=$(COV_FAIL_UNDER) || gate=$$?; \
	if [ $$gate -ne 0 ]; then echo "make test: line coverage of $(COV_GATE) is below $(COV_FAIL_UNDER)%" >&2; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	exit $$gate

# The fast tier: everything but the slow, browser and lint markers (pyproject.toml [tool.pytest.ini_options]),
# on both cores, without coverage, with small fuzz and kill counts. For the edit-test loop; CI runs `make test`.
FAST_JOBS ?= 2
test-fast: deps ## the fast tier: no kernels, browsers or lint; both cores, no coverage (under 3 minutes)
	NBHARDEN_FUZZ_EXAMPLES=$${NBHARDEN_FUZZ_EXAMPLES:-300} NBHARDEN_KILL_TRIALS=$${NBHARDEN_KILL_TRIALS:-10} \
	  $(PY) -m pytest -q -p no:cacheprovider -m "not slow and not browser and not lint" \
	  -n $(FAST_JOBS) $(PYTEST_ARGS)

lint: deps ## ruff and mypy --strict on the sources
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

# The reference tools of the benchmarks (jupytext, nbconvert, papermill) in a venv of their own: nbharden's venv
# has JupyterLab's jsonschema extras, which make every nbformat import 1.5 s slower (bench/goals.py).
BENCH_REF := build/bench-ref
$(BENCH_REF)/.installed:
	rm -rf $(BENCH_REF)
	$(PY) -m venv $(BENCH_REF)
	$(BENCH_REF)/bin/pip install --quiet --disable-pip-version-check \
	  jupytext==1.19.6 nbconvert==7.17.2 papermill==2.7.0 nbformat==5.11.1
	@touch $@

BENCH_ARGS ?=
bench: deps $(BENCH_REF)/.installed ## issue 17's goals against their references, then the table (bench/README.md)
	$(PY) bench/goals.py $(BENCH_ARGS)

clean: ## remove build output and caches (keeps .venv)
	rm -rf build dist .pytest_cache .ruff_cache .mypy_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also remove .venv
	rm -rf $(VENV)

-include $(wildcard mk/*.mk)
