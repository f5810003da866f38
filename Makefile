# District Resolve — the two commands of the README, and their parts.
#   make run    migrate + seed the embedded SQLite database, start the server
#   make test   install what is needed, lint, run the suite on SQLite and on PostgreSQL

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run install lint format test test-sqlite test-postgres bench clean

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint test-sqlite test-postgres

test-sqlite: install
	$(BIN)/python -m pytest -p no:cacheprovider

test-postgres: install
	bash .ci/with-postgres.sh $(BIN)/python -m pytest -p no:cacheprovider

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
