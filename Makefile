# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each creates .venv and installs envparity into it when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo examples test test-fast check venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "envparity needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## demo: a simulated AWS account (no account needed) with three drifting environments,
## scanned, compared and gated
demo: $(STAMP)
	$(BIN)/envparity demo

## examples: the bundled local environments (files and a command), scanned and compared
## (the diff exits 1 because the examples do drift; that is the point)
examples: $(STAMP)
	cd examples && ../$(BIN)/envparity scan --all
	cd examples && ../$(BIN)/envparity diff staging production --format table || [ $$? -eq 1 ]

## test: lint, types, import rules, migrations check and the whole test suite
test: $(STAMP)
	./scripts/check

## test-fast: the edit-test loop: every test not marked slow, no linting (under 2 minutes);
## extra pytest arguments in ARGS, e.g. `make test-fast ARGS="-x tests/api"`
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -q $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/envparity.db*
