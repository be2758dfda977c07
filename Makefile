# Sparekey: `make run` serves the site with the demo account; `make test` runs the whole suite;
# `make serve` runs it under gunicorn (production shape); `make bench` writes bench/RESULTS.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

NPM ?= npm

.PHONY: install run serve test bench lint format clean screenshots security quality

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# axe-core for the browser tests' accessibility scan; Lighthouse and pa11y for `make quality`
# (they drive the machine's Chromium: puppeteer downloads no browser of its own).
node_modules/.installed: package.json package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
		PUPPETEER_SKIP_DOWNLOAD=1 $(NPM) ci --no-audit --no-fund --loglevel=error && touch $@ \
			|| echo "npm ci failed: the browser tests will skip the accessibility scan"; \
	else \
		echo "npm not found: the browser tests will skip the accessibility scan"; \
	fi

run: install
	$(BIN)/flask --app app init-db
	$(BIN)/flask --app app demo
	@echo "Sparekey is at http://$(HOST):$(PORT)/  (Ctrl-C stops it); or press Try the demo there for an account of your own"
	@echo "Mail it would send is saved under instance/mail/ and shown at http://$(HOST):$(PORT)/dev/mailbox/"
	@$(BIN)/python -m serve_dev --host $(HOST) --port $(PORT)

# gunicorn with gunicorn.conf.py: WEB_CONCURRENCY workers (default 2 x CPUs + 1, capped), bound to
# HOST:PORT. Set SPAREKEY_ENV=production, SECRET_KEY, DATABASE_URL and RATELIMIT_STORAGE_URI for
# real use (docs/operations.md).
serve: install
	$(BIN)/flask --app app init-db
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py

test: install node_modules/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Refresh the README's pictures in docs/screenshots/ (README and help page) from a real browser run.
screenshots: install node_modules/.installed
	SPAREKEY_REQUIRE_BROWSER=1 SPAREKEY_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e -q

# Benchmarks (not timed tests): writes bench/RESULTS.md, sections 1-8 (7 is bench/code_timing.py,
# 8 bench/demo_sandboxes.py).
# Uses wrk (Debian package) when it can be installed, else a Python load generator. Database:
# BENCH_DATABASE_URL, by default `sparekey_bench` on the local PostgreSQL (created if missing,
# its tables dropped and made again; never the tests' database); SQLite when PostgreSQL is
# unreachable, and then the double-spend run is skipped with a note.
bench: install
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 \
		&& { apt-get install -y -qq wrk >/dev/null 2>&1 \
			|| { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }; } \
		|| echo "wrk is not available: the Python load generator is used"
	$(BIN)/python -m bench.run

# bandit, pip-audit and sqlmap against a local server, then docs/security.md from the checklist
# tests of this run.
security: install
	$(BIN)/python -m tools.security_scan
	$(BIN)/python -m tools.checklist_report

# Lighthouse and pa11y (pinned in package.json) with the machine's Chromium against log-in, Home,
# Backup Codes and the sheet (phone and desktop) and every page (pa11y): the figures go to
# docs/quality.md, and a missed target (a score under 95, a pa11y error) fails.
CHROME_PATH ?= $(shell command -v chromium 2>/dev/null)
quality: install node_modules/.installed
	CHROME_PATH=$(CHROME_PATH) PUPPETEER_EXECUTABLE_PATH=$(CHROME_PATH) PUPPETEER_SKIP_DOWNLOAD=1 \
		$(BIN)/python -m tools.quality

# ruff (style, and models.py / extensions.py below the domain), import-linter (the layers'
# contracts in pyproject.toml) and mypy (security/, models.py and the clock).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache test-artifacts
