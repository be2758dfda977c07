# Sparekey: `make run` serves the site with the demo account; `make test` runs the whole suite;
# `make serve` runs it under gunicorn (production shape); `make bench` writes bench/RESULTS.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

NPM ?= npm

.PHONY: install run serve test bench lint format clean screenshots security

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# axe-core for the browser tests' accessibility scan.
node_modules/.installed: package.json package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(NPM) ci --no-audit --no-fund --loglevel=error && touch $@ \
			|| echo "npm ci failed: the browser tests will skip the accessibility scan"; \
	else \
		echo "npm not found: the browser tests will skip the accessibility scan"; \
	fi

run: install
	$(BIN)/flask --app app init-db
	$(BIN)/flask --app app demo
	@echo "Sparekey is at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
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

# Benchmarks (not timed tests): writes bench/RESULTS.md, sections 1-7 (7 is bench/code_timing.py).
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
