# District Resolve — the two commands of the README, and their parts.
#   make run    migrate + seed the embedded SQLite database, start the server
#   make test   install what is needed, lint, run the suite on SQLite and on PostgreSQL

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

# One file or one test: make test-sqlite PYTEST_ARGS=tests/test_tickets.py
#                      make test-postgres PYTEST_ARGS='tests/test_tickets.py -k merge'
# Worker processes (pytest-xdist): client and server share one process and its GIL
# in a test session, so one session per core uses the machine. PYTEST_WORKERS=0: one process.
PYTEST_ARGS ?=
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal \
	--durations=15 --durations-min=1
TIMED  := bash .ci/timed

.PHONY: run install lint lint-checks format test test-sqlite test-postgres bench clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv || true
	if [ -x $(BIN)/uv ]; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,desktop]'; \
	else \
	  $(BIN)/python -m pip install --quiet -e '.[dev,desktop]'; \
	fi
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/resolve-server migrate
	$(BIN)/resolve-server seed-demo
	@echo "API docs: http://$(HOST):$(PORT)/api/docs"
	RESOLVE_LOG_JSON=$${RESOLVE_LOG_JSON:-false} $(BIN)/resolve-server serve --host $(HOST) --port $(PORT)

# The desktop's main views rendered offscreen from sample data (no server, no display).
screenshots: install
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m desktop.screenshots docs/screenshots

lint: install
	@$(TIMED) lint $(MAKE) --no-print-directory lint-checks

lint-checks:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint test-sqlite test-postgres

test-sqlite: install
	@$(TIMED) "SQLite suite" $(PYTEST) $(PYTEST_ARGS)

test-postgres: install
	@$(TIMED) "PostgreSQL suite" bash .ci/with-postgres.sh $(PYTEST) $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
