# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each creates .venv and installs envparity into it when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` needs only the demo extra (a third of the size, half the install time); a venv
# that already has the development tools (make test) serves the demo as it is.
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_NEEDS := $(if $(wildcard $(STAMP)),$(STAMP),$(DEMO_STAMP))

.PHONY: demo examples test test-fast check venv clean

venv: $(STAMP)

define install
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "envparity needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(2) -e '.[$(1)]'
	@touch $@
endef

$(STAMP): pyproject.toml
	$(call install,dev)

# --no-compile: Python compiles only the modules the demo imports, when it first imports them,
# not all of moto's services up front (a third of the install time).
$(DEMO_STAMP): pyproject.toml
	$(call install,demo,--no-compile)

## demo: a simulated AWS account (no account needed) with three drifting environments,
## scanned, compared and gated
demo: $(DEMO_NEEDS)
	$(BIN)/envparity demo

## examples: the bundled local environments (files and a command), scanned and compared
## (the diff exits 1 because the examples do drift; that is the point)
examples: $(DEMO_NEEDS)
	cd examples && ../$(BIN)/envparity scan --all
	cd examples && ../$(BIN)/envparity diff staging production --format table || [ $$? -eq 1 ]

## test: lint, types, import rules, migrations check and the whole test suite
test: $(STAMP)
	./scripts/check

## test-fast: the edit-test loop: every test not marked slow, no linting (under 2 minutes);
## extra pytest arguments in ARGS, e.g. `make test-fast ARGS="-x tests/api"`
test-fast: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile -m "not slow" -q $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/envparity.db*
