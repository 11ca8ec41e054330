# The two commands a newcomer needs: `make run` and `make test`.
# Each creates/updates the virtualenv in .venv and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= config/eventbus.example.yaml
PYTEST_ARGS ?=

.PHONY: install run test unit lint format bench schema all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Runs one worker with the example configuration. With no Redis configured
# (EVENTBUS_BROKER__REDIS_URL) and none answering on 127.0.0.1:6379, it starts
# the embedded development broker and prints its URL.
run: install
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

bench: install
	$(PY) -m bench

all: lint test bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
