# Two commands: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The 8.0 line of the SDK, beside the dev extra's 8.1 line, for the contract tests.
SDK_80_VERSIONS := 8.0.0 8.0.9
DEV_ENV := DEBUG=true
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agentstats
TEST_ENV := SECRET_KEY=test-only-secret-key DATABASE_URL=$(TEST_DATABASE_URL)

.PHONY: run test lint install services clean

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
	$(DEV_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy .

test: $(STAMP) services lint
	$(TEST_ENV) $(BIN)/python manage.py check
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(TEST_ENV) $(BIN)/pytest

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
