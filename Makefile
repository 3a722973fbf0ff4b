PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run: install, apply the demo's syncs.yaml to the embedded sync API (SQLite), then open the
## Dagster UI with the demo code location
run: $(STAMP)
	$(BIN)/sync-pipelines dev --apply sync_pipelines/demo/syncs.yaml

## test: install, then run every test
test: $(STAMP)
	$(BIN)/pytest -q

## bench: the benchmark against dlt and the databases' limit (installs the bench extra and
## DuckDB's SQLite scanner as a package, without its pin on another DuckDB release)
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/pip install --quiet --no-deps duckdb-extension-sqlite-scanner
	$(BIN)/python -m bench $(BENCH_ARGS)

## serve: run the sync API as an HTTP server
serve: $(STAMP)
	$(BIN)/sync-pipelines api serve

lint: $(STAMP)
	$(BIN)/ruff check sync_pipelines sync_pipelines_tests bench
	$(BIN)/ruff format --check sync_pipelines sync_pipelines_tests bench
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .sync_pipelines .pytest_cache
