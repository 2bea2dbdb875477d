# Atalaia: `make up` runs the stack, `make test` proves it. `make help` lists the rest.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The docker compose CLI: Docker's plugin when present, else the one `make tools` builds into
# the tool cache (outside the repo; see tools/upstream.py).
COMPOSE_CLI := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || $(PYTHON) -c 'from tools.upstream import components; print(components()["compose"].binary())')
COMPOSE := $(COMPOSE_CLI) --env-file versions.env --env-file .env

.PHONY: help venv lock prices tools tools-verify chromium test test-unit test-config test-e2e lint fmt bench bench-library bench-stack

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml requirements/dev.lock
	@echo "==> Python environment in $(VENV), from requirements/dev.lock (every version and hash pinned)"
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	rm -rf $(VENV)  # from scratch: a package the lock dropped must not linger
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on --require-hashes --no-deps -r requirements/dev.lock
	$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

venv: $(VENV)/.installed ## create the Python virtualenv with the library, demo fleet and dev tools

UV_VERSION := 0.9.30
lock: ## re-resolve requirements/dev.lock from pyproject.toml (the one step that picks versions)
	@$(PYTHON) -m venv /tmp/atalaia-uv && /tmp/atalaia-uv/bin/pip install -q uv==$(UV_VERSION)
	/tmp/atalaia-uv/bin/uv pip compile pyproject.toml requirements/build.in --extra dev \
	  --constraints requirements/constraints.txt --generate-hashes --python-version 3.11 \
	  --python-platform linux -o requirements/dev.lock

prices: venv ## refresh the price table from the locked genai-prices, then the cost rules (docs/cost.md)
	$(PY) -m tools.prices refresh
	$(PY) -m atalaia_ops.cost generate

tools: venv ## build the pinned upstream servers (Go) and install the query grammars (npm) into the tool cache
	$(PY) -m tools.build
	$(PY) -m tools.grammars

tools-verify: ## rebuild every tool from empty Go caches, -mod=readonly: all it needs is locked
	$(PYTHON) -m tools.build --verify

# The alert sink's page is tested in a real headless browser (tests/config/test_alert_sink_page.py):
# Debian's Chromium, installed with apt-get once; later runs only check that it is there.
chromium: ## install Chromium (apt-get) for the browser test of the alert sink's page, if missing
	@if command -v chromium >/dev/null 2>&1; then echo "==> $$(chromium --version 2>/dev/null)"; exit 0; fi; \
	  command -v apt-get >/dev/null 2>&1 || { \
	    echo "chromium is not on PATH and there is no apt-get: install Chromium some other way" >&2; exit 1; }; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "==> installing Chromium with apt-get (once; for the alert sink page test)"; \
	  $$sudo apt-get update; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	  echo "==> $$(chromium --version)"

lint: venv ## ruff lint and format check, mypy --strict on the Python code (not the tests)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: venv ## format the Python code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: tools chromium lint ## everything CI runs: tools, lint, unit + config + e2e tests
	$(PY) -m pytest

test-unit: venv ## only the fast unit tests
	$(PY) -m pytest -m unit

test-config: tools chromium ## only config validation with the upstream binaries
	$(PY) -m pytest -m config

test-e2e: tools ## only the end-to-end tests against the native stack
	$(PY) -m pytest -m e2e

bench: bench-library bench-stack ## every benchmark (heavy; not part of `make test`)

bench-library: venv ## the library's cost per LLM call vs the raw SDK, OpenLLMetry, OpenLIT; start-up; install size
	$(PY) bench/bench_library.py

bench-stack: tools ## the native stack under load, as root in its own network namespace (docs/benchmarks.md)
	$(PY) bench/bench_stack.py

# ---------------------------------------------------------------------------------------------
# The stack (issue 3): compose when a Docker engine answers, else the native stack.
# ---------------------------------------------------------------------------------------------
.PHONY: up down clean logs ps up-native down-native env backup restore

DOCKER_OK := $(shell docker info >/dev/null 2>&1 && echo yes)
NATIVE_DIR := $(or $(ATALAIA_NATIVE_DIR),$(or $(XDG_STATE_HOME),$(HOME)/.local/state)/atalaia/native)
UI_HOST := $(or $(shell sed -n 's/^ATALAIA_UI_BIND=//p' .env 2>/dev/null),127.0.0.1)
API_HOST := $(or $(shell sed -n 's/^ATALAIA_API_BIND=//p' .env 2>/dev/null),127.0.0.1)

.env: .env.example
	@[ -f .env ] || { cp .env.example .env; chmod 600 .env; echo "==> created .env from .env.example"; }
	@if grep -q '^GRAFANA_ADMIN_PASSWORD=$$' .env; then \
	  $(PYTHON) -c 'import pathlib, re, secrets; p = pathlib.Path(".env"); \
	    p.write_text(re.sub(r"(?m)^GRAFANA_ADMIN_PASSWORD=$$", \
	      "GRAFANA_ADMIN_PASSWORD=" + secrets.token_urlsafe(18), p.read_text()))'; \
	  echo "==> wrote a random Grafana admin password into .env"; fi
	@if grep -q '^ATALAIA_ALERT_SINK_TOKEN=$$' .env || ! grep -q '^ATALAIA_ALERT_SINK_TOKEN=' .env; then \
	  $(PYTHON) -c 'import pathlib, re, secrets; p = pathlib.Path(".env"); t = p.read_text(); \
	    v = "ATALAIA_ALERT_SINK_TOKEN=" + secrets.token_urlsafe(24); \
	    p.write_text(re.sub(r"(?m)^ATALAIA_ALERT_SINK_TOKEN=$$", v, t) if re.search(r"(?m)^ATALAIA_ALERT_SINK_TOKEN=$$", t) else t.rstrip("\n") + "\n" + v + "\n")'; \
	  echo "==> wrote a random alert sink token into .env"; fi
	@touch .env

env: .env ## create .env (random Grafana admin password) if it does not exist

up: ## run the stack (compose, or natively without Docker) and print every URL
ifeq ($(DOCKER_OK),yes)
	@$(MAKE) --no-print-directory .env
	$(COMPOSE) up -d --build --wait
	@echo "==> Atalaia is up"
	@echo "  Grafana        http://$(UI_HOST):3000  (user $$(sed -n 's/^GRAFANA_ADMIN_USER=//p' .env), password $$(sed -n 's/^GRAFANA_ADMIN_PASSWORD=//p' .env))"
	@echo "  Prometheus     http://$(API_HOST):9090"
	@echo "  Alertmanager   http://$(API_HOST):9093"
	@echo "  Loki           http://$(API_HOST):3100"
	@echo "  Tempo          http://$(API_HOST):3200"
	@echo "  Alert sink     http://$(UI_HOST):9199"
	@echo "  Orchestrator   http://$(API_HOST):8000/metrics"
	@echo "  Collector      http://$(API_HOST):8888/metrics (self-metrics), http://$(API_HOST):13133 (health)"
	@echo "  OTLP (agents)  grpc://<this host>:4317  http://<this host>:4318"
else
	@echo "==> no Docker engine answers \`docker info\`: running the native stack instead"
	@$(MAKE) --no-print-directory up-native
	@$(PY) -m demo_agents status >/dev/null 2>&1 || $(MAKE) --no-print-directory demo
endif

down: ## stop the stack (data is kept)
ifeq ($(DOCKER_OK),yes)
	$(COMPOSE_CLI) --env-file versions.env $(if $(wildcard .env),--env-file .env) down
else
	-@$(PY) -m demo_agents stop
	@$(MAKE) --no-print-directory down-native
endif

clean: ## stop the stack and DELETE its data (asks first)
	@read -r -p "Delete all Atalaia data (compose volumes and $(NATIVE_DIR))? [y/N] " ok; \
	  [ "$$ok" = y ] || [ "$$ok" = yes ] || { echo "kept everything"; exit 1; }
ifeq ($(DOCKER_OK),yes)
	$(COMPOSE_CLI) --env-file versions.env $(if $(wildcard .env),--env-file .env) down -v
endif
	@$(MAKE) --no-print-directory down-native
	rm -rf "$(NATIVE_DIR)"

logs: ## follow the stack's logs
ifeq ($(DOCKER_OK),yes)
	$(COMPOSE_CLI) --env-file versions.env $(if $(wildcard .env),--env-file .env) logs -f --tail=100
else
	tail -n 50 -F "$(NATIVE_DIR)"/logs/*.log
endif

ps: ## list the stack's services and their health
ifeq ($(DOCKER_OK),yes)
	$(COMPOSE_CLI) --env-file versions.env $(if $(wildcard .env),--env-file .env) ps
else
	-$(PY) -m tools.native_stack status
endif

# Backup and restore (docs/backup.md): a dated archive of the stack's state, the stores paused
# for a consistent copy while the collector queues. Default directory outside the repo.
BACKUP_DIR ?= $(or $(ATALAIA_BACKUP_DIR),$(or $(XDG_STATE_HOME),$(HOME)/.local/state)/atalaia/backups)
BACKUP_ARGS = --stack $(if $(DOCKER_OK),compose,native) --state-dir "$(NATIVE_DIR)" \
  --compose-cli "$(COMPOSE_CLI)" --env-file versions.env $(if $(wildcard .env),--env-file .env)

backup: venv ## archive the stack's state into BACKUP_DIR (SECRETS=1 keeps .env's secrets)
	$(PY) -m tools.backup backup $(BACKUP_ARGS) --output-dir "$(BACKUP_DIR)" $(if $(filter 1,$(SECRETS)),--secrets)

restore: venv ## put a backup back, stack stopped: make restore FILE=<archive> [FORCE=1]
	@if [ -z "$(FILE)" ]; then echo "usage: make restore FILE=<atalaia-backup-....tar.gz> [FORCE=1]; backups in $(BACKUP_DIR)" >&2; exit 2; fi
	$(PY) -m tools.backup restore "$(FILE)" $(BACKUP_ARGS) $(if $(filter 1,$(FORCE)),--force)

up-native: tools ## run collector, Prometheus, Alertmanager, Loki, Tempo as local processes
	$(PY) -m tools.native_stack up

down-native: venv ## stop the native stack
	$(PY) -m tools.native_stack down

# ----------------------------------------------------------------------------------------------
# Demo fleet (demo_agents/): mock LLM, orchestrator + self-healing supervisor, agents Helix, Sigma,
# Atlas and Nova. It sends OTLP to OTEL_EXPORTER_OTLP_ENDPOINT (default 127.0.0.1:4318, OTLP/HTTP), so it
# works against whichever stack is up, compose or native. Runtime files live outside the repo
# (see demo_agents/fleet_config.py: ATALAIA_DEMO_STATE_DIR).
DEMO_LOAD ?= 20
DEMO_SEED ?= 42
DEMO_FAULTS := slow_llm llm_errors rate_limit retry_loop budget_burn agent_crash agent_hang cpu_hog queue_backlog crm_down db_down

.PHONY: demo demo-stop fault fault-clear explain

demo: venv ## start the demo fleet in the background (DEMO_LOAD tasks/min, DEMO_SEED)
	$(PY) -m demo_agents run --load $(DEMO_LOAD) --seed $(DEMO_SEED)

demo-stop: venv ## stop every demo fleet process
	$(PY) -m demo_agents stop

fault: venv ## switch a demo fault on: make fault FAULT=<name> [AGENT=<agent>]
	@if [ -z "$(FAULT)" ]; then echo "usage: make fault FAULT=<name> [AGENT=<agent>]; faults: $(DEMO_FAULTS)" >&2; exit 2; fi
	$(PY) -m demo_agents fault $(FAULT) $(if $(AGENT),--agent $(AGENT))

fault-clear: venv ## switch every demo fault off
	$(PY) -m demo_agents fault-clear

explain: venv ## why was an agent slow: make explain AGENT=<agent> [SINCE=15m]
	@if [ -z "$(AGENT)" ]; then echo "usage: make explain AGENT=<agent> [SINCE=15m]" >&2; exit 2; fi
	$(VENV)/bin/atalaia explain --agent $(AGENT) --from now-$(or $(SINCE),15m)
