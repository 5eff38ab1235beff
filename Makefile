# The two commands: `make run` and `make test`. Both install everything they need first
# (a virtualenv with uv, then the locked dependencies), on a machine with only python3 and make.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# uv lives in its own small venv: `uv sync` prunes what the lock file does not list.
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install browser run worker test lint studio clean-data bench

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

# The browser tests drive Debian's Chromium through its chromedriver (never a downloaded
# browser); installed here when missing, so a fresh machine needs nothing by hand.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

run: install
	$(PY) -m api

worker: install
	$(PY) -m jobs.worker

# The JS SDK test's packages (tests/js/package-lock.json), installed with `npm ci` when missing or
# when the lock file changes. No npm is an error, not a skipped test.
JS := tests/js
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs node 20+ and npm (the JS SDK test, tests/js)" >&2; exit 1; }
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: install browser $(JS)/node_modules/.installed
	$(PY) -m pytest -q

# A few minutes on 2 cores: one table on stdout, raw samples in bench/results/ (git-ignored).
bench: install
	$(PY) -m bench

# ruff, then mypy with the pydantic plugin over the whole repository (configured in pyproject.toml:
# strict on domain/, state/ and graphs/).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

studio: install
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true $(VENV)/bin/langgraph dev --no-browser

clean-data:
	rm -rf .data
