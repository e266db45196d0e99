PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install lock demo test test-unit test-newest lint docs format bench fuzz-api screenshot all clean

# Exact versions with hashes (requirements-dev.lock, made by `make lock`), then the project.
$(INSTALLED): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "inventory-monitor needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(INSTALLED)

# Refresh the lock files from the ranges in pyproject.toml (uv comes from the dev lock).
lock: install
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--no-header --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --no-header --quiet -o requirements-dev.lock

# The suite against the newest versions pyproject.toml allows, in a venv of its own.
test-newest:
	rm -rf .venv-newest
	$(PYTHON) -m venv .venv-newest
	.venv-newest/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	.venv-newest/bin/pytest -q

demo: install
	$(BIN)/inventory-monitor demo

lint: install
	$(BIN)/ruff check monitor tests bench migrations docs .ci
	$(BIN)/ruff format --check monitor tests bench migrations docs .ci
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python .ci/limits.py monitor
	$(BIN)/hadolint Dockerfile

# The documentation site: a broken link or anchor fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/pytest

# The pure tests alone, in seconds: no database, broker, server, process or browser.
test-unit: install
	$(BIN)/pytest -q -m unit

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
	rm -rf $(VENV) .venv-newest .mypy_cache .ruff_cache .pytest_cache data site
