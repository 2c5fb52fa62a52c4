"""`manage.py connection_stats` when the broker cannot be asked (exit 3, the reason, no
credentials), and as its own process against the real RabbitMQ and PostgreSQL."""

import json
import logging
import os
import subprocess
import sys
from base64 import b64encode
from typing import Any
from urllib.parse import quote

import pytest
import requests
import responses
from django.conf import settings
from django.core.management import execute_from_command_line
from django.db import connection

from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.broker import CONNECTIONS_URL, CONSUMERS_URL, QUEUES_URL
from tests.kit.commands import run_connection_stats
from tests.kit.paths import ROOT
from tests.kit.real_broker import provision_agent

MANAGE_PY = ROOT / "manage.py"
SECRET = "pw-Zq8-never-echo-this"


BROKER_FAILURES: list[Any] = [
    pytest.param(
        {"body": requests.ConnectionError("Connection refused")},
        "RabbitMQ management API is unreachable",
        id="refused",
    ),
    pytest.param(
        {"body": requests.ReadTimeout("Read timed out.")},
        "RabbitMQ management API did not answer in time",
        id="timeout",
    ),
    pytest.param(
        {"status": 401, "json": {"error": "not_authorized", "reason": "Login failed"}},
        "RabbitMQ management API rejected the configured credentials",
        id="http-401",
    ),
    pytest.param(
        {"status": 503, "body": "busy"},
        "RabbitMQ management API failed with HTTP 503",
        id="http-503",
    ),
    pytest.param(
        {"body": "<html>RabbitMQ Management</html>", "content_type": "text/html"},
        "management API returned a body that is not JSON for connections",
        id="not-json",
    ),
]


@pytest.mark.parametrize(("failure", "expected_reason"), BROKER_FAILURES)
def test_broker_failure_exits_3_with_the_reason_and_no_credentials(
    failure, expected_reason, command_fleet, broker, settings, caplog
):
    # given: a distinctive password and a broker whose connections call fails
    settings.RABBITMQ_USER = "monitor"
    settings.RABBITMQ_PASSWORD = SECRET
    settings.RABBITMQ_GET_RETRIES = 0
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    broker.add(responses.GET, QUEUES_URL, json=command_fleet["queues"])
    broker.add(responses.GET, CONSUMERS_URL, json=[])
    caplog.set_level(logging.DEBUG)

    # when
    result = run_connection_stats("--json")

    # then
    assert result.stdout == ""
    assert result.stderr == f"The message broker cannot be asked: {expected_reason}"
    assert result.exit_code == 3
    credentials = b64encode(f"monitor:{SECRET}".encode()).decode()
    for leak in (SECRET, credentials):
        assert leak not in result.stderr
        assert leak not in caplog.text


def test_process_exits_3_and_writes_the_reason_to_stderr_when_the_broker_refuses(
    command_fleet, broker, settings, capsys
):
    # given
    settings.RABBITMQ_PASSWORD = SECRET
    broker.add(responses.GET, CONNECTIONS_URL, body=requests.ConnectionError("refused"))
    broker.add(responses.GET, QUEUES_URL, body=requests.ConnectionError("refused"))

    # when the command runs as `manage.py connection_stats` would
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "connection_stats", "--skip-checks"])

    # then
    captured = capsys.readouterr()
    assert exited.value.code == 3
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == (
        "CommandError: The message broker cannot be asked: RabbitMQ management API is unreachable"
    )
    assert SECRET not in captured.err


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + ":" + quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_command_process_reports_a_provisioned_agent_without_a_client_as_disconnected(
    transactional_db, real_postgres, real_broker
):
    # given: an agent provisioned on the real broker (vhost, user, queue) that never connects
    owner = UserFactory(username="cli-owner")
    offering = OfferingFactory(name="CLI HPC", customer=CustomerFactory(owners=[owner]))
    identity = AgentIdentityFactory(offering=offering, created_by=owner, name="cli-agent")
    _, queue = provision_agent(identity, owner=owner, object_type="order")

    # when `manage.py connection_stats --json` runs as its own process on the test database
    completed = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, str(MANAGE_PY), "connection_stats", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": _database_url()},
        timeout=60,
        check=False,
    )

    # then it exits 1 and lists the agent, disconnected, with its queue found on the broker
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert completed.stderr.endswith("CommandError: 1 of 1 matching agents are disconnected.\n")
    body = json.loads(completed.stdout)
    (agent,) = body["agents"]
    assert agent["uuid"] == str(identity.uuid)
    assert agent["name"] == "cli-agent"
    assert agent["connected"] is False
    assert agent["event_subscriptions"][0]["rmq_connection"]["connected"] is False
    assert [(q["name"], q["exists_on_broker"], q["consumers"]) for q in agent["queues"]] == [
        (queue.queue_name, True, 0)
    ]
    assert body["summary"]["disconnected_agents"] == 1
    assert settings.RABBITMQ_PASSWORD not in completed.stdout + completed.stderr
