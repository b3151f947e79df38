# Two commands for a new user: `make demo` (the demo migration on the bundled sandboxes) and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TARGET ?= sandbox
PAIR ?=

.PHONY: install test lint unit integration dags bench demo freeze clean postgres chromium wheel

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PY) >/dev/null || { echo "python3 is required"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	@$(MAKE) --no-print-directory postgres
	@$(MAKE) --no-print-directory chromium
	@touch $(STAMP)

install: $(STAMP)

# PostgreSQL server binaries for the private state DB used by tests and the demo.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	else echo "installing PostgreSQL server (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi; fi

# headless Chromium: the on-call view's browser test (tests/integration/ui) loads its pages in it
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	else echo "installing Chromium (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; fi; fi

lint: $(STAMP)
	$(BIN)/ruff check dags plugins include tests bench

# the suite also runs on the real Odoo servers of ../shared/odoo17-server and ../shared/odoo19-server;
# TEST_WORKERS pytest-xdist workers, each taking whole groups (a test module on one Odoo target)
TEST_WORKERS ?= 2
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=25 tests

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# every bench/bench_*.py; bench_parallel.py (a serial and a parallel full run under a real Airflow scheduler, its own
# Odoo 17 with two workers) takes 10 to 15 minutes of it
bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: $(STAMP)
	TARGET=$(TARGET) PAIR=$(PAIR) $(BIN)/python -m crm_sandbox.demo

# the package as a wheel in dist/ (no package index has it): pip install dist/airflow_crm_migration-*.whl -c requirements.txt
wheel:
	@test -x $(BIN)/pip || $(PY) -m venv $(VENV)
	rm -rf build dist/airflow_crm_migration-*.whl
	$(BIN)/pip wheel -q --no-deps -w dist .
	@ls dist/airflow_crm_migration-*.whl

freeze:
	$(BIN)/pip freeze --exclude-editable | grep -vi '^airflow-crm-migration' > requirements.txt

clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .ruff_cache
