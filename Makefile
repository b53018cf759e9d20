# The two commands: `make run` and `make test`. Each sets up .venv, the front-end packages and the
# built browser assets itself; `make test` also installs Debian's chromium (as root).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEB := bridge/web
DIST := $(WEB)/dist
# Directories too, so that an added or removed file also rebuilds.
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/pages 2>/dev/null)
CHROMIUM := /usr/bin/chromium
CHROMIUM_INSTALL := apt-get install -y --no-install-recommends chromium

.PHONY: run test lint typecheck web clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run

# Front-end packages, exactly as locked; again whenever the lock changes.
$(WEB)/node_modules/.installed: $(WEB)/package-lock.json $(WEB)/package.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm" >&2; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

# The built assets (shipped in the wheel): rebuilt when missing or older than any source.
$(DIST)/manifest.json: $(WEB_SOURCES) $(WEB)/build.mjs $(WEB)/node_modules/.installed
	cd $(WEB) && node build.mjs

web: $(DIST)/manifest.json

# Debian's chromium for the browser tests: installed when missing if we are root.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(CHROMIUM_INSTALL); \
	else \
		echo "chromium is missing; install it with: sudo $(CHROMIUM_INSTALL)" >&2; \
		exit 1; \
	fi

run: $(VENV)/.run web
	$(BIN)/bridge serve --demo

lint: $(VENV)/.test
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench

typecheck: $(VENV)/.test
	$(BIN)/mypy --strict bridge

test: lint typecheck web $(CHROMIUM)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache $(WEB)/node_modules $(DIST)
