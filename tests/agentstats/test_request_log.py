"""With LOG_FORMAT=json every request leaves one JSON line: request id (echoed as
X-Request-ID), user uuid, method, path, status, duration and broker wait; never a token,
a password or a query string."""

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import cast

import pytest
import responses
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token

from agentstats.request_log import RequestContextFilter
from tests.factories import UserFactory
from tests.kit.broker import CONNECTIONS_URL, CONSUMERS_URL, QUEUES_URL, slow_answer
from tests.kit.paths import ROOT

REQUEST_LOGGER = "agentstats.requests"
BROKER_DELAY_SECONDS = 0.05


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the console handler writes with LOG_FORMAT=json: the settings' json formatter
    and the request-context filter, on a handler of the root logger."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    formatters = cast(dict[str, dict], settings.LOGGING["formatters"])
    formatter_config = dict(formatters["json"])  # a copy: configuring pops its "()"
    handler.setFormatter(logging.config.DictConfigurator({}).configure_formatter(formatter_config))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous_level)


def parse_lines(buffer: io.StringIO) -> list[dict]:
    """Every line must be one JSON object."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def request_lines(buffer: io.StringIO) -> list[dict]:
    return [line for line in parse_lines(buffer) if line["logger"] == REQUEST_LOGGER]


@pytest.fixture
def agent_owner(db) -> tuple[object, str]:
    user = UserFactory()
    return user, Token.objects.get_or_create(user=user)[0].key


def test_a_request_logs_one_json_line_with_its_fields_and_no_secret(json_log, agent_owner):
    # given a caller whose token also turns up in the query string, with a password
    user, token = agent_owner

    # when
    response = Client().get(
        f"/api/users/me/?token={token}&password=hunter2-secret",
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    # then one line, with the request's fields
    assert response.status_code == 200
    (line,) = request_lines(json_log)
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32
    assert line["user_id"] == str(user.uuid)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/users/me/", 200)
    assert line["duration_ms"] >= 0
    assert (line["broker_wait_ms"], line["broker_calls"]) == (0, 0)
    assert (line["level"], line["message"].split()[:3]) == (
        "INFO",
        ["GET", "/api/users/me/", "200"],
    )
    # and neither the token nor the password nor the query string, anywhere
    output = json_log.getvalue()
    assert token not in output
    assert "hunter2" not in output
    assert "password" not in output
    assert user.username not in output


def test_django_s_own_error_lines_leave_the_query_string_out(json_log, agent_owner):
    # given an unknown path, which Django's request logger reports
    _, token = agent_owner

    # when
    response = Client().get(
        f"/api/no-such-thing/?token={token}", HTTP_AUTHORIZATION=f"Token {token}"
    )

    # then its line says which request, and carries no token
    assert response.status_code == 404
    lines = parse_lines(json_log)
    django_line = next(line for line in lines if line["logger"] == "django.request")
    assert django_line["request_id"] == response["X-Request-ID"]
    assert "request" not in django_line
    assert token not in json_log.getvalue()


@pytest.mark.parametrize("incoming", ["0f6c1a2e-2b1d-4c4e-9a53-5d1b8e6c7f10", "lb.7:abc_DEF-1"])
def test_a_sane_incoming_request_id_is_kept_and_echoed(json_log, db, incoming):
    response = Client().get("/api/version/", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] == incoming
    (line,) = request_lines(json_log)
    assert (line["request_id"], line["user_id"]) == (incoming, None)


@pytest.mark.parametrize(
    "incoming", ["", "has space", "x" * 129, "-leading-dash", "a\u00e9b", "<script>"]
)
def test_an_odd_incoming_request_id_is_replaced(json_log, db, incoming):
    response = Client().get("/api/version/", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32
    assert request_lines(json_log)[0]["request_id"] == response["X-Request-ID"]
    assert incoming not in json_log.getvalue() or incoming == ""


def test_broker_wait_is_the_time_the_request_spent_in_broker_calls(json_log, db, broker, settings):
    # given a broker that takes a while over each of the snapshot's three listings
    settings.BROKER_SNAPSHOT_TTL = 0
    cache.clear()
    for url in (CONNECTIONS_URL, QUEUES_URL, CONSUMERS_URL):
        broker.add_callback(responses.GET, url, callback=slow_answer(BROKER_DELAY_SECONDS))
    staff = UserFactory(is_staff=True)
    token = Token.objects.get_or_create(user=staff)[0].key

    # when staff read the connection stats
    response = Client().get(
        "/api/marketplace-site-agent-connection-stats/", HTTP_AUTHORIZATION=f"Token {token}"
    )

    # then the three calls (made on worker threads) were heard, and waited on
    assert response.status_code == 200
    (line,) = request_lines(json_log)
    assert line["broker_calls"] == 3
    assert line["broker_wait_ms"] >= BROKER_DELAY_SECONDS * 1000
    assert line["duration_ms"] >= line["broker_wait_ms"]
    assert line["user_id"] == str(staff.uuid)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_leave_no_request_line(json_log, db, path):
    response = Client().get(path)

    assert response.status_code == 200
    assert request_lines(json_log) == []


def test_log_format_json_makes_the_console_write_json_lines():
    # given a fresh process configured with LOG_FORMAT=json (settings are read once)
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('agentstats.check').warning('hello %s', 'world', extra={'n': 1})"
    )

    # when it logs
    completed = _run_python(code, LOG_FORMAT="json")

    # then stderr holds one JSON object with the record's fields
    # (every line is JSON; other loggers, e.g. django-axes at start-up, may write too)
    lines = [json.loads(text) for text in completed.stderr.splitlines()]
    (line,) = [record for record in lines if record["logger"] == "agentstats.check"]
    assert {key: line[key] for key in ("level", "logger", "message", "n")} == {
        "level": "WARNING",
        "logger": "agentstats.check",
        "message": "hello world",
        "n": 1,
    }
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize(("value", "is_json"), [("", False), ("plain", False), ("JSON", True)])
def test_log_format_defaults_to_the_human_format(value, is_json):
    completed = _run_python(
        "import django, logging; django.setup(); logging.getLogger('x').warning('hi')",
        LOG_FORMAT=value,
    )

    assert completed.stderr.startswith("{") is is_json


def test_an_unknown_log_format_is_refused():
    with pytest.raises(subprocess.CalledProcessError) as failure:
        _run_python("import django; django.setup()", LOG_FORMAT="xml")

    assert "LOG_FORMAT must be plain or json, got 'xml'" in failure.value.stderr


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "SECRET_KEY": "test",
            "DJANGO_SETTINGS_MODULE": "agentstats.settings",
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
