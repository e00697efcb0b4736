# Everything runs inside .venv; `make install` creates it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-fast lint format run data bench clean

install:  ## create .venv and install ginpipe with the CPU torch pinned in constraints-cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -c constraints-cpu.txt -e ".[dev]"

test:  ## lint, layering contracts, types and the whole test suite (what CI runs)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mypy && $(BIN)/pytest

test-fast:  ## the fast lane: no run of the console script, no server, no DDP (90 s)
	$(BIN)/pytest -m "not slow"

lint:  ## ruff lint + format check + layering contracts + mypy (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run:  ## the default pipeline: ResNet on the bundled digits
	$(BIN)/ginpipe run base models/resnet

data:  ## write the digits as PNG files + labels.csv (the "bring your own files" example)
	$(BIN)/python scripts/make_file_dataset.py

bench:  ## side-by-side benchmarks, written to benchmarks/RESULTS.md
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf experiments .pytest_cache .ruff_cache
