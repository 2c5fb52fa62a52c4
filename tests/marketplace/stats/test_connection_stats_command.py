"""`manage.py connection_stats`: the fleet as a table or the API's JSON, the API's filters,
and exit codes a cron job or monitoring check can act on (0 all connected, 1 one is
disconnected, 2 invalid filters, 3 broker unavailable). The management API is mocked by
`responses`, except in the one test against the real RabbitMQ."""

import json
import logging
import os
import subprocess
import sys
from base64 import b64encode
from dataclasses import dataclass
from datetime import UTC, datetime
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
import requests
import responses
from django.conf import settings
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection

from marketplace.models import AgentServiceState
from tests.factories import (
    AgentIdentityFactory,
    CustomerFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.broker import (
    CONNECTIONS_URL,
    CONSUMERS_URL,
    QUEUES_URL,
    SNAPSHOT_CALLS,
    mock_broker_snapshot,
)
from tests.kit.fleet import Fleet
from tests.kit.paths import ROOT
from tests.kit.real_broker import provision_agent

STATS_URL = "/api/marketplace-site-agent-connection-stats/"
MANAGE_PY = ROOT / "manage.py"
SECRET = "pw-Zq8-never-echo-this"


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


def run_connection_stats(*argv: str) -> CommandResult:
    """Run the command as its argv would; a CommandError's code is the process exit code."""
    out, err = StringIO(), StringIO()
    try:
        call_command("connection_stats", *argv, stdout=out, stderr=err)
    except CommandError as exc:
        return CommandResult(exc.returncode, out.getvalue(), err.getvalue() + str(exc))
    return CommandResult(0, out.getvalue(), err.getvalue())


@pytest.fixture
def fleet(db):
    """On offering HPC: alpha-login (ACTIVE and ERROR services; two subscriptions connected
    from 10.0.0.5 and 10.0.0.6; 5 + 1 queued) and beta-batch (IDLE, disconnected, 2
    queued). On another customer's offering Storage: gamma-store (no services, connected
    from 10.0.0.7, nothing queued)."""
    hpc = OfferingFactory(name="HPC")
    storage = OfferingFactory(name="Storage", customer=CustomerFactory())
    fleet = Fleet()
    alpha = fleet.add_agent(
        "alpha-login",
        offering=hpc,
        services={"orders": AgentServiceState.ACTIVE, "sync": AgentServiceState.ERROR},
    )
    fleet.add_queue(
        alpha,
        "order",
        messages=5,
        consumers=1,
        connected_from="10.0.0.5",
        connected_at=datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC),
    )
    fleet.add_queue(
        alpha,
        "resource",
        messages=1,
        consumers=1,
        connected_from="10.0.0.6",
        connected_at=datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC),
    )
    beta = fleet.add_agent("beta-batch", offering=hpc, services={"batch": AgentServiceState.IDLE})
    fleet.add_queue(beta, "order", messages=2, consumers=0)
    gamma = fleet.add_agent("gamma-store", offering=storage)
    fleet.add_queue(
        gamma,
        "order",
        messages=0,
        consumers=1,
        connected_from="10.0.0.7",
        connected_at=datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC),
    )
    return {
        "hpc": hpc,
        "storage": storage,
        "connections": fleet.connections,
        "queues": fleet.queues,
    }


@pytest.fixture
def answering_broker(fleet, broker):
    mock_broker_snapshot(broker, connections=fleet["connections"], queues=fleet["queues"])
    return broker


# --- the table --------------------------------------------------------------------------------


def test_table_lists_each_agent_and_exits_1_when_one_is_disconnected(answering_broker):
    # when
    result = run_connection_stats()

    # then
    assert result.stdout == (
        "AGENT        OFFERING  CONNECTED  CONNECTED SINCE       SOURCE IP           "
        "SERVICES                   QUEUED\n"
        "alpha-login  HPC       yes        2026-11-24T06:44:28Z  10.0.0.5, 10.0.0.6  "
        "orders:ACTIVE, sync:ERROR  6\n"
        "beta-batch   HPC       no         -                     -                   "
        "batch:IDLE                 2\n"
        "gamma-store  Storage   yes        2026-11-25T00:00:00Z  10.0.0.7            "
        "-                          0\n"
        "3 agents: 2 connected, 1 disconnected; 8 queued messages\n"
    )
    assert result.stderr == "1 of 3 matching agents are disconnected."
    assert result.exit_code == 1
    assert sorted(call.request.url.split("?")[0] for call in answering_broker.calls) == [
        CONNECTIONS_URL,
        CONSUMERS_URL,
        QUEUES_URL,
    ]


@pytest.mark.parametrize(
    ("argv", "expected_agents"),
    [
        (["--connected", "true"], ["alpha-login", "gamma-store"]),
        (["--offering-uuid", "storage"], ["gamma-store"]),
        (["--service-state", "error"], ["alpha-login"]),
        (["--name", "LOGIN"], ["alpha-login"]),
    ],
)
def test_exits_0_when_every_agent_matching_the_filters_is_connected(
    argv, expected_agents, fleet, answering_broker
):
    # given
    argv = [str(fleet[value].uuid) if value in fleet else value for value in argv]

    # when
    result = run_connection_stats(*argv)

    # then
    rows = result.stdout.splitlines()[1:-1]
    assert [row.split()[0] for row in rows] == expected_agents
    assert result.stdout.splitlines()[-1] == (
        f"{len(expected_agents)} agents: {len(expected_agents)} connected, 0 disconnected; "
        f"{6 if 'alpha-login' in expected_agents else 0} queued messages"
    )
    assert result.stderr == ""
    assert result.exit_code == 0


def test_exits_0_and_says_so_when_no_agent_matches(answering_broker):
    # when
    result = run_connection_stats("--name", "no-such-agent")

    # then
    assert result.stdout == (
        "No agents match.\n0 agents: 0 connected, 0 disconnected; 0 queued messages\n"
    )
    assert result.stderr == ""
    assert result.exit_code == 0


def test_exits_1_when_the_only_matching_agent_is_disconnected(answering_broker):
    # when
    result = run_connection_stats("--service-state", "IDLE")

    # then
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "AGENT",
        "beta-batch",
        "1",
    ]
    assert result.stderr == "1 of 1 matching agents are disconnected."
    assert result.exit_code == 1


def test_table_replaces_control_characters_in_agent_names(broker, offering):
    # given: an agent whose name would move the terminal's cursor and colour its output
    AgentIdentityFactory(offering=offering, name="evil\x1b[2J\x1b[31mname\nnext")
    mock_broker_snapshot(broker, connections=[], queues=[])

    # when
    result = run_connection_stats()

    # then
    assert result.stdout.splitlines()[1].split()[0] == "evil?[2J?[31mname?next"
    assert "\x1b" not in result.stdout
    assert result.exit_code == 1


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected_exit_code"),
    [
        ({}, 1),
        ({"offering_uuid": "hpc"}, 1),
        ({"customer_uuid": "storage"}, 0),
        ({"connected": "true"}, 0),
        ({"connected": "false"}, 1),
        ({"service_state": "Active"}, 0),
        ({"name": "batch"}, 1),
    ],
)
def test_json_is_the_api_document_for_the_same_filters(
    params, expected_exit_code, fleet, answering_broker, staff_user, client_for, settings
):
    # given: one shared snapshot serves both, as it would within its TTL
    settings.BROKER_SNAPSHOT_TTL = 60
    values = {
        key: str(fleet[value].customer.uuid if key == "customer_uuid" else fleet[value].uuid)
        if key.endswith("_uuid")
        else value
        for key, value in params.items()
    }
    api = client_for(staff_user).get(STATS_URL, values)
    argv = [part for key, value in values.items() for part in (f"--{key.replace('_', '-')}", value)]

    # when
    result = run_connection_stats("--json", *argv)

    # then
    assert api.status_code == 200
    assert json.loads(result.stdout) == api.json()
    assert result.exit_code == expected_exit_code
    assert len(answering_broker.calls) == SNAPSHOT_CALLS


# --- invalid filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected_message"),
    [
        (["--offering-uuid", "not-a-uuid"], "--offering-uuid: Must be a valid UUID."),
        (["--customer-uuid", "12345"], "--customer-uuid: Must be a valid UUID."),
        (["--connected", "maybe"], '--connected: "maybe" is not a valid choice.'),
        (["--connected", "True"], '--connected: "True" is not a valid choice.'),
        (["--service-state", "busy"], "--service-state: Must be one of ACTIVE, IDLE, ERROR."),
        (["--name", ""], "--name: This field may not be blank."),
        (
            ["--offering-uuid", "x", "--service-state", "busy"],
            "--offering-uuid: Must be a valid UUID.; "
            "--service-state: Must be one of ACTIVE, IDLE, ERROR.",
        ),
    ],
)
def test_invalid_filters_exit_2_with_the_field_errors_before_asking_the_broker(
    argv, expected_message, fleet, broker
):
    # when
    result = run_connection_stats(*argv)

    # then
    assert result.stdout == ""
    assert result.stderr == f"Invalid filters: {expected_message}"
    assert result.exit_code == 2
    assert len(broker.calls) == 0


def test_api_rejects_the_same_filter_values(staff_user, client_for, broker):
    # when the API is given what the command rejects
    response = client_for(staff_user).get(
        STATS_URL, {"offering_uuid": "x", "service_state": "busy", "connected": "True"}
    )

    # then it names the same fields with the same messages
    assert response.status_code == 400
    assert response.json() == {
        "offering_uuid": ["Must be a valid UUID."],
        "connected": ['"True" is not a valid choice.'],
        "service_state": ["Must be one of ACTIVE, IDLE, ERROR."],
    }


# --- broker unavailable -----------------------------------------------------------------------

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
    failure, expected_reason, fleet, broker, settings, caplog
):
    # given: a distinctive password and a broker whose connections call fails
    settings.RABBITMQ_USER = "monitor"
    settings.RABBITMQ_PASSWORD = SECRET
    settings.RABBITMQ_GET_RETRIES = 0
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    broker.add(responses.GET, QUEUES_URL, json=fleet["queues"])
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
    fleet, broker, settings, capsys
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


# --- the real broker --------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + ":" + quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.broker
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
