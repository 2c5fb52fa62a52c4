# Two commands: `make run` and `make test`. Both create .venv and install what they need.
# `make unit` runs the tests that need no service, in well under a minute.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.run-stamp
# The 8.0 line of the SDK, beside the dev extra's 8.1 line, for the contract tests.
SDK_80_VERSIONS := 8.0.0 8.0.9
# The real site agents, each in its own folder with its own pins (constraints-agent-*.txt):
# they need stomp.py < 9 and their own SDK line, so they run as subprocesses, never in .venv.
AGENT_VERSIONS := 1.0.7 1.0.0
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agentstats
TEST_ENV := SECRET_KEY=test-only-secret-key DATABASE_URL=$(TEST_DATABASE_URL)
# Every test that needs PostgreSQL, RabbitMQ, Redis, a browser or a live server carries a
# marker from its fixtures (tests/kit/services.py); `make unit` deselects them and runs the
# rest on an in-memory SQLite database and the local-memory cache. CI=true: a test that asks
# for a service anyway fails rather than skips.
SERVICE_MARKERS := broker or postgres or redis or browser or live_server or prometheus
UNIT_ENV := CI=true SECRET_KEY=test-only-secret-key DATABASE_URL=sqlite:///:memory: CACHE_URL=

.PHONY: run test unit lint install services browser prometheus bench clean

$(STAMP): pyproject.toml constraints.txt $(foreach version,$(AGENT_VERSIONS),constraints-agent-$(version).txt)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	for version in $(SDK_80_VERSIONS); do \
	  $(BIN)/pip install -q --disable-pip-version-check --no-deps --upgrade \
	    --target $(VENV)/sdk-$$version waldur-api-client==$$version || exit 1; \
	done
	for version in $(AGENT_VERSIONS); do \
	  $(BIN)/pip install -q --disable-pip-version-check --no-warn-conflicts --upgrade \
	    -c constraints-agent-$$version.txt --target $(VENV)/agent-$$version \
	    waldur-site-agent==$$version || exit 1; \
	done
	@touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e .
	@touch $(RUN_STAMP)

install: $(STAMP)

services:
	scripts/services.sh all

# `make run` serves, so it installs the package without the dev extra (its own stamp).
run: $(RUN_STAMP)
	BIN=$(BIN) scripts/run.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy .
	$(BIN)/lint-imports

# The browser test drives Debian's Chromium through Debian's chromedriver (never a browser
# download). Installed when missing; if that fails, the test says so (and fails under CI=true).
browser:
	-@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { timeout 300 apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium chromium-driver; }

# The alert rules are checked and unit-tested by Debian's promtool, and a real Debian
# prometheus server scrapes a live instance in the tests (deploy/, tests/deploy/). Installed
# when missing (without the recommended exporters); if that fails, the tests say so.
prometheus:
	-@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  { timeout 300 apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends prometheus; }

test: $(STAMP) services browser prometheus lint
	$(TEST_ENV) $(BIN)/python manage.py check
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(TEST_ENV) $(BIN)/pytest

unit: $(STAMP)
	$(UNIT_ENV) $(BIN)/pytest -n 2 -m "not ($(SERVICE_MARKERS))"

# docs/benchmarks.md: the stats endpoint against the broker's floor and the upstream pattern,
# a 32-poller load run (wrk), and the serving phase (pollers against the shipped threaded
# server and a static body at 1,000 and 10,000 agents, a hung broker, two replicas; alone:
# BENCH_ARGS=--serving-only, about 12 minutes). About 25 minutes; never alongside the tests.
BENCH_ARGS ?= --agents 100 1000 5000 --requests 10
bench: $(STAMP) services
	-@command -v wrk >/dev/null || \
	  { timeout 300 apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq wrk; }
	$(BIN)/python bench/run_stats_benchmark.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
