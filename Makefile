# make serve   run the API and its workers in the foreground (Ctrl-C stops all)
# make test    run the test suite under PyPy; make test PY=python3 for CPython
# make bench   PyPy vs CPython benchmarks (README, Performance); QUICK=1: under 2 minutes
# make lint    ruff and the import floors (import-linter), under CPython

PY ?= pypy3
VENV ?= .venv/$(notdir $(PY))
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
QUICK ?=
BENCH_ARGS ?=

.PHONY: serve test lint bench bench-venv wrk interpreter clean

serve: $(STAMP)
	$(BIN)/python -m api init-db
	$(BIN)/python -m api import-salaries --if-empty
	@# supervisord runs every process in supervisord.conf and starts again
	@# the ones that exit; Ctrl-C stops all. One collatz worker per core.
	@mkdir -p var
	SERVE_PYTHON="$(abspath $(BIN))/python" SERVE_DIR="$(abspath var)" \
	  COLLATZ_WORKERS="$$(nproc)" exec $(BIN)/supervisord -c supervisord.conf

test: $(STAMP)
	@# wrk drives the bench harness's smoke test (skipped, with a reason, without it).
	@$(MAKE) --no-print-directory wrk || echo "wrk is missing: the bench smoke test will be skipped"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The layer check's graph library has no PyPy build: lint runs under CPython.
lint:
	@$(MAKE) --no-print-directory .venv/python3/.installed PY=python3
	.venv/python3/bin/ruff check .
	.venv/python3/bin/ruff format --check .
	.venv/python3/bin/lint-imports

# Both interpreters' virtualenvs with the bench extras, then the harness
# (run by CPython, which also draws the chart with matplotlib).
bench: wrk
	@$(MAKE) --no-print-directory bench-venv PY=pypy3
	@$(MAKE) --no-print-directory bench-venv PY=python3
	.venv/python3/bin/python -m bench.run $(if $(filter-out 0 no false,$(QUICK)),--quick) $(BENCH_ARGS)

bench-venv: $(STAMP) $(VENV)/.bench-installed

# A failed install under PyPy (gevent builds from source there) is not fatal:
# the harness reports the gevent worker class as not available, with the reason.
$(VENV)/.bench-installed: requirements-bench.txt $(STAMP)
	@mkdir -p var
	@echo "installing requirements-bench.txt into $(VENV)"
	@if $(BIN)/python -m pip install -q -r requirements-bench.txt \
	    > var/bench-pip-$(notdir $(VENV)).log 2>&1; then touch $@; \
	elif [ "$(notdir $(VENV))" = pypy3 ]; then \
	  echo "requirements-bench.txt did not install under PyPy; see var/bench-pip-pypy3.log" >&2; \
	else cat var/bench-pip-$(notdir $(VENV)).log >&2; exit 1; fi

# wrk (Debian package): installed when missing and running as root;
# otherwise the exact command is printed.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else \
	    echo "wrk is missing. Run: sudo apt-get install -y wrk" >&2; exit 1; \
	  fi; }

# Debian packages the project needs: PyPy (pypy3, pypy3-venv, pypy3-dev) and
# libpq-dev (psycopg2cffi builds against it under PyPy). Installed when missing
# and running as root; otherwise the exact command is printed.
DEBIAN_PACKAGES := $(if $(filter pypy3,$(notdir $(PY))),pypy3 pypy3-venv pypy3-dev libpq-dev)

interpreter:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Missing Debian packages. Run: sudo apt-get install -y" $$missing >&2; exit 1; \
	  fi; \
	fi
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found" >&2; exit 1; }

$(BIN)/python:
	@$(MAKE) --no-print-directory interpreter PY=$(PY)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

clean:
	rm -rf .venv var .pytest_cache
