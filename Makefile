PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test lint format bench fuzz-api screenshot all clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "inventory-monitor needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

demo: install
	$(BIN)/inventory-monitor demo

lint: install
	$(BIN)/ruff check monitor tests bench migrations docs .ci
	$(BIN)/ruff format --check monitor tests bench migrations docs .ci
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

format: install
	$(BIN)/ruff check --fix monitor tests bench migrations docs .ci
	$(BIN)/ruff format monitor tests bench migrations docs .ci

bench: install
	$(BIN)/python -m bench

fuzz-api: install
	PYTHONPATH=. $(BIN)/python .ci/fuzz_api.py

screenshot: install
	$(BIN)/python docs/screenshot.py

all: format test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache data
