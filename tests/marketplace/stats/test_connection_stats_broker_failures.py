"""When the broker cannot be asked, the stats answer 503 broker_unavailable (never a fleet
of disconnected agents) and never leak the management password."""

import json
import logging
from base64 import b64encode
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from tests.kit.api import STATS_URL
from tests.kit.broker import CONNECTIONS_URL, CONSUMERS_URL, QUEUES_URL, captured

SECRET = "pw-Zq8-never-echo-this"
TRUNCATED = json.dumps(captured("connections_columns.json"))[:700]


def _without_user() -> list[dict[str, Any]]:
    items = captured("connections_columns.json")
    del items[1]["user"]
    return items


def _beyond_any_date() -> list[dict[str, Any]]:
    items = captured("connections_columns.json")
    items[1]["connected_at"] = 10**20
    return items


BROKEN_CONNECTIONS: list[Any] = [
    pytest.param({"body": requests.ConnectionError("Connection refused")}, id="refused"),
    pytest.param({"body": requests.ReadTimeout("Read timed out. (read timeout=5)")}, id="timeout"),
    pytest.param({"status": 500, "json": {"error": "Internal Server Error"}}, id="http-500"),
    pytest.param(
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        id="http-502",
    ),
    pytest.param(
        {"status": 401, "json": {"error": "not_authorized", "reason": "Login failed"}},
        id="http-401",
    ),
    pytest.param(
        {"body": "<html>RabbitMQ Management</html>", "content_type": "text/html"}, id="not-json"
    ),
    pytest.param({"body": TRUNCATED, "content_type": "application/json"}, id="truncated-json"),
    pytest.param({"json": {"items": captured("connections_columns.json")}}, id="dict-not-list"),
    pytest.param({"json": ["publisher", "agent-amqp"]}, id="list-of-strings"),
    pytest.param({"json": _without_user()}, id="connection-without-user"),
    pytest.param({"json": _beyond_any_date()}, id="connected-at-beyond-any-date"),
]


@pytest.mark.parametrize("failure", BROKEN_CONNECTIONS)
def test_stats_return_503_broker_unavailable_without_leaking_the_password(
    failure, captured_fleet, staff_user, client_for, broker, settings, caplog
):
    # given: a distinctive management password and a broker whose connections call fails
    settings.RABBITMQ_USER = "monitor"
    settings.RABBITMQ_PASSWORD = SECRET
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    broker.add(responses.GET, QUEUES_URL, json=captured("queues_columns.json"))
    broker.add(responses.GET, CONSUMERS_URL, json=captured("consumers.json"))
    caplog.set_level(logging.DEBUG)

    # when
    response = client_for(staff_user).get(STATS_URL)

    # then
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["code"] == "broker_unavailable"
    credentials = b64encode(f"monitor:{SECRET}".encode()).decode()
    assert broker.calls[0].request.headers["Authorization"] == f"Basic {credentials}"
    assert caplog.records
    for leak in (SECRET, credentials):
        assert leak not in response.content.decode()
        assert leak not in caplog.text


@pytest.mark.parametrize(
    "failing_url",
    [CONNECTIONS_URL, QUEUES_URL, CONSUMERS_URL],
    ids=["connections", "queues", "consumers"],
)
def test_stats_return_503_not_a_disconnected_fleet_when_either_broker_call_fails(
    failing_url, captured_fleet, staff_user, client_for, broker
):
    # given: alpha is connected according to the captured connections
    answers: dict[str, Callable[[], dict[str, Any]]] = {
        CONNECTIONS_URL: lambda: {"json": captured("connections_columns.json")},
        QUEUES_URL: lambda: {"json": captured("queues_columns.json")},
        CONSUMERS_URL: lambda: {"json": captured("consumers.json")},
    }
    for url, answer in answers.items():
        kwargs = {"status": 502, "body": "bad gateway"} if url == failing_url else answer()
        broker.add(responses.GET, url, **kwargs)

    # when
    response = client_for(staff_user).get(STATS_URL)

    # then
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert "agents" not in response.json()
