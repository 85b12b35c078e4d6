# make serve   run the API and its workers in the foreground (Ctrl-C stops all)
# make test    run the test suite under PyPy; make test PY=python3 for CPython
# make bench   benchmarks (see bench/README.md); QUICK=1 for a short run

PY ?= pypy3
VENV ?= .venv/$(notdir $(PY))
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: serve test bench interpreter clean

serve: $(STAMP)
	$(BIN)/python -m api init-db
	$(BIN)/python -m api import-salaries --if-empty
	@# honcho hands each process a PORT; the web process gets ours (default 8000).
	@# One collatz worker per core.
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/honcho start -f Procfile -p "$${PORT:-8000}" \
	  -c "collatz-worker=$$(nproc)"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's PyPy (pypy3, pypy3-venv, pypy3-dev): installed when missing and
# running as root; otherwise the exact command is printed.
interpreter:
	@command -v $(PY) >/dev/null 2>&1 || { \
	  if [ "$(PY)" != pypy3 ]; then echo "$(PY) not found" >&2; exit 1; fi; \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 pypy3-venv pypy3-dev; \
	  else \
	    echo "PyPy 3 is missing. Run: sudo apt-get install -y pypy3 pypy3-venv pypy3-dev" >&2; exit 1; \
	  fi; }

$(BIN)/python:
	@$(MAKE) --no-print-directory interpreter PY=$(PY)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

clean:
	rm -rf .venv var .pytest_cache
