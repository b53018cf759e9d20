# The two commands: `make run` and `make test`. Each sets up .venv, the front-end packages and the
# built browser assets itself; `make test` also installs the Debian packages the suite starts
# (chromium, postgresql, redis-server, nginx) when run as root, and names the command otherwise.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEB := bridge/web
DIST := $(WEB)/dist
# Directories too, so that an added or removed file also rebuilds.
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/pages 2>/dev/null)
# The servers and the browser the tests start themselves, on loopback: a program of each package.
PACKAGES := chromium:/usr/bin/chromium postgresql:/usr/lib/postgresql/*/bin/initdb \
	redis-server:/usr/bin/redis-server nginx:/usr/sbin/nginx openssl:/usr/bin/openssl
MISSING = $(foreach p,$(PACKAGES),$(if $(wildcard $(lastword $(subst :, ,$(p)))),,$(firstword $(subst :, ,$(p)))))

.PHONY: run test lint typecheck web packages clean

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

# Debian's packages for the tests: installed when missing if we are root.
packages:
	@if [ -n "$(strip $(MISSING))" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing for the tests: $(MISSING)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y --no-install-recommends $(MISSING); \
		else \
			echo "missing for the tests; install with: sudo apt-get install -y --no-install-recommends $(MISSING)" >&2; \
			exit 1; \
		fi; \
	fi

run: $(VENV)/.run web
	$(BIN)/bridge serve --demo

lint: $(VENV)/.test
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench

typecheck: $(VENV)/.test
	$(BIN)/mypy --strict bridge

# The whole suite on SQLite, and at the same time on PostgreSQL (tests/run_both.py).
test: lint typecheck web packages
	$(BIN)/python tests/run_both.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache $(WEB)/node_modules $(DIST)
