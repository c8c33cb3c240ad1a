# The two commands of the README: `make demo` (main job) and `make test` (test suite); both set up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint leaderboard

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	@$(BIN)/emozoo demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
