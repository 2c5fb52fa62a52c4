# Two commands: `make run` and `make test`. Both create .venv and install what they need.
# `make unit` runs the tests that need no service, in well under a minute.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The 8.0 line of the SDK, beside the dev extra's 8.1 line, for the contract tests.
SDK_80_VERSIONS := 8.0.0 8.0.9
DEV_ENV := DEBUG=true
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agentstats
TEST_ENV := SECRET_KEY=test-only-secret-key DATABASE_URL=$(TEST_DATABASE_URL)
# Every test that needs PostgreSQL, RabbitMQ, Redis, a browser or a live server carries a
# marker from its fixtures (tests/kit/services.py); `make unit` deselects them and runs the
# rest on an in-memory SQLite database and the local-memory cache. CI=true: a test that asks
# for a service anyway fails rather than skips.
SERVICE_MARKERS := broker or postgres or redis or browser or live_server
UNIT_ENV := CI=true SECRET_KEY=test-only-secret-key DATABASE_URL=sqlite:///:memory: CACHE_URL=

.PHONY: run test unit lint install services browser bench clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	for version in $(SDK_80_VERSIONS); do \
	  $(BIN)/pip install -q --disable-pip-version-check --no-deps --upgrade \
	    --target $(VENV)/sdk-$$version waldur-api-client==$$version || exit 1; \
	done
	@touch $(STAMP)

install: $(STAMP)

services:
	scripts/services.sh all

run: $(STAMP)
	-@scripts/services.sh rabbitmq || true
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/python manage.py seed_demo
	@scripts/services.sh check-rabbitmq || printf '%s\n' \
	  "No RabbitMQ answers at $${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}." \
	  "Start one: sudo rabbitmq-plugins enable rabbitmq_management rabbitmq_stomp rabbitmq_web_stomp && sudo rabbitmq-server -detached" \
	  "   or with Docker: docker compose up -d rabbitmq" \
	  "Until then, broker-backed calls answer 503 broker_unavailable."
	@# The server runs in the background so that, once it answers (bounded wait) and a broker
	@# does, the connection observer and a small simulated fleet start beside it; Ctrl-C
	@# stops all three.
	@server=; fleet=; observer=; \
	trap 'kill $$fleet $$observer $$server 2>/dev/null; wait; exit 130' INT TERM; \
	$(DEV_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000 & server=$$!; \
	is_up=false; for _ in $$(seq 30); do \
	  if curl -s -o /dev/null -m 2 http://127.0.0.1:8000/admin/login/; then is_up=true; break; fi; \
	  kill -0 $$server 2>/dev/null || break; sleep 1; \
	done; \
	if ! $$is_up; then \
	  echo "Simulated fleet skipped: the server did not answer on 127.0.0.1:8000."; \
	elif scripts/services.sh check-rabbitmq; then \
	  echo "Connection observer: watching RabbitMQ's event exchange."; \
	  $(DEV_ENV) $(BIN)/python manage.py observe_connections & observer=$$!; \
	  echo "Simulated fleet: 5 agents of user demo-sim, 1 flapping; a status line every 30 s."; \
	  $(DEV_ENV) $(BIN)/python manage.py simulate_fleet --agents 5 --owner demo-sim \
	    --flap-share 0.2 --status-seconds 30 & fleet=$$!; \
	else \
	  echo "Simulated fleet skipped: no RabbitMQ answers."; \
	fi; \
	wait $$server; status=$$?; \
	[ -z "$$fleet" ] || { kill $$fleet 2>/dev/null; wait $$fleet; }; \
	[ -z "$$observer" ] || { kill $$observer 2>/dev/null; wait $$observer; }; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy .

# The browser test drives Debian's Chromium through Debian's chromedriver (never a browser
# download). Installed when missing; if that fails, the test says so (and fails under CI=true).
browser:
	-@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { timeout 300 apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium chromium-driver; }

test: $(STAMP) services browser lint
	$(TEST_ENV) $(BIN)/python manage.py check
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(TEST_ENV) $(BIN)/pytest

unit: $(STAMP)
	$(UNIT_ENV) $(BIN)/pytest -m "not ($(SERVICE_MARKERS))"

# docs/benchmarks.md: the stats endpoint against the broker's floor and the upstream pattern,
# and a 32-poller load run (wrk). About 15 minutes; never alongside the test suite.
BENCH_ARGS ?= --agents 100 1000 5000 --requests 10
bench: $(STAMP) services
	-@command -v wrk >/dev/null || \
	  { timeout 300 apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq wrk; }
	$(BIN)/python bench/run_stats_benchmark.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
