# Every target creates .venv on first use and installs the project with the extras it needs,
# so a fresh machine with only Python 3.10+ can run `make test` and `make demo`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: test lint typecheck pytest demo run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict clerk_deps

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov=clerk_deps --cov-report=term --cov-fail-under=95

demo: $(STAMP)
	$(BIN)/python examples/demo.py

run: $(STAMP)
	$(BIN)/python -m uvicorn examples.jobs_api:app --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache .pytest_cache htmlcov
