# Entry points: `make dev` (demo in the Dagster UI), `make test`, and `make deploy` / `make deploy-stop`.
# Everything lands in ./.venv; nothing depends on what the host happens to have.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# benchmarks/vs_dagstermill.py only: dagstermill pins jupyter-client<8, so never into .venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: dev test test-fast docs setup system-deps sandbox-image seed bench clean deploy deploy-stop

# `dg dev` serves the project that dg.toml describes (the demo) from this environment;
# VIRTUAL_ENV names .venv as the active one (else dg warns that the project's .venv is not).
dev: setup sandbox-image warehouse.duckdb
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/python scripts/serve_demo_sources.py -- $(BIN)/dg dev

# Dagster as deployed (docs/deployment.md): Postgres storage and warehouse, a code
# server, webserver and daemon, each run in its own container. Kept in ./.deploy.
deploy: setup sandbox-image
	$(BIN)/nb-assets deploy up --seed scripts/seed_demo.py

.PHONY: lab
# JupyterLab on the project: the runtime loadable, NB_ASSETS_WAREHOUSE set, on 127.0.0.1.
lab: setup warehouse.duckdb
	$(BIN)/nb-assets lab .

deploy-stop:
	$(BIN)/nb-assets deploy down

# The deployment soaked: the tests marked soak (eight runs through a queue of two across a daemon
# restart), then 200 notebook runs through its queue, each exactly once, none failed
# (benchmarks/soak/deploy_queue.py; about an hour). Never part of `make test` or `make bench`.
.PHONY: soak
soak: setup sandbox-image
	$(BIN)/pytest -m soak
	$(BIN)/python benchmarks/soak/deploy_queue.py --runs 200

# The layers first (import-linter contracts in pyproject.toml), then the manual builds
# with no warning, then every test. A skipped Docker, Postgres or browser test fails it
# (tests/support/skip_gate.py) unless NB_ASSETS_ALLOW_SKIPS names the component.
test: setup sandbox-image
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/pytest

# The unit tier: no Docker, Postgres, kernel or Dagster daemon; under a minute. Serial (-n 0):
# it is all CPU, and starting workers costs more than they save.
test-fast: setup
	$(BIN)/lint-imports
	$(BIN)/pytest -n 0 tests/unit

# The manual (docs/), served at http://127.0.0.1:8000 as you edit it.
docs: setup
	$(BIN)/mkdocs serve

setup: system-deps $(STAMP)

# unshare (LocalSandbox) and ip come from util-linux and iproute2; the offline
# image builder needs debootstrap; the browser test drives Debian's chromium;
# the Postgres tests start a throwaway cluster with Debian's server binaries.
# Installed only when missing, and only as root.
system-deps:
	@missing=""; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing"; fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lab]'
	# The kernel papermill starts must be this environment's Python.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(STAMP)

sandbox-image: $(STAMP)
	$(BIN)/nb-assets sandbox build

warehouse.duckdb: | $(STAMP)
	$(BIN)/python scripts/seed_demo.py --warehouse $@

seed: $(STAMP)
	$(BIN)/python scripts/seed_demo.py --warehouse warehouse.duckdb

bench: setup sandbox-image $(BENCH_STAMP)
	for script in benchmarks/[!_]*.py; do $(BIN)/python $$script || exit 1; done

# dagstermill 0.29.27 is the release that pins our dagster (1.13.27). Its notebooks run on
# the kernelspec `python3`: installed here so that kernel is this environment's Python.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -e '.[test]' dagstermill==0.29.27
	$(BENCH_VENV)/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(BENCH_STAMP)

clean:
	-test -f .deploy/deploy.json && $(BIN)/nb-assets deploy down --purge
	rm -rf $(VENV) $(BENCH_VENV) .nb_assets .dagster_home warehouse.duckdb landing
