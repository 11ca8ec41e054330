# The two commands a newcomer needs: `make run` and `make test`.
# Each creates/updates the virtualenv in .venv and installs what it needs:
# `make run` the daemon and the embedded broker (.[worker,embedded]), `make
# test` everything (.[dev]). One stamp per install set, so switching works.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CONFIG ?= config/eventbus.example.yaml
PYTEST_ARGS ?=

.PHONY: install install-run run test unit lint format bench schema all clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[worker,embedded]'
	touch $(RUN_STAMP)

# dev includes worker and embedded, so it satisfies `make run` too.
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

install: $(DEV_STAMP)

install-run: $(RUN_STAMP)

# Runs one worker with the example configuration. With no Redis configured
# (EVENTBUS_BROKER__REDIS_URL) and none answering on 127.0.0.1:6379, it starts
# the embedded development broker and prints its URL.
run: install-run
	$(VENV)/bin/eventbus --config $(CONFIG) run --embedded-fallback

lint: install
	$(VENV)/bin/ruff check eventbus publishers consumers tests bench
	$(VENV)/bin/ruff format --check eventbus publishers consumers tests bench
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix eventbus publishers consumers tests bench
	$(VENV)/bin/ruff format eventbus publishers consumers tests bench

# Lint, then every test (unit + integration against the real Redis).
test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: install
	$(VENV)/bin/pytest -m "not integration and not browser and not slow" $(PYTEST_ARGS)

schema: install
	$(PY) -m eventbus.schema > config/eventbus.schema.json
	$(PY) -m eventbus.schema envelope > config/envelope.schema.json

bench: install
	$(PY) -m bench

all: lint test bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
