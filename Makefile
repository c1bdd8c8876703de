# `make demo` and `make test` each set everything up on a fresh machine, then run.
# The venv is (re)installed only when pyproject.toml or constraints.txt changes, so a second run
# installs nothing. Versions come from constraints.txt: the ones the tests pass with.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean postgres

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and exactly pinned: the CPU wheel on disk, never the CUDA download.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hpo run studies/lr_schedules.py

# The storage contract suite starts a real PostgreSQL server (tests/postgres.py): its binaries
# come from Debian's postgresql package, installed here when missing (as root, or with sudo).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) postgres
	# The dashboard test looks at the page in a real browser: Debian's headless chromium.
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "chromium could not be installed: the dashboard browser test will be skipped"
	$(PY) -m ruff check .
	$(PY) -m mypy hpo search_spaces
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy hpo search_spaces

clean:
	rm -rf $(VENV) build *.egg-info
