"""`manage.py connection_stats`: the fleet as a table or the API's JSON, the API's filters,
and exit codes a cron job or monitoring check can act on (0 all connected, 1 one is
disconnected, 2 invalid filters), with the management API mocked by `responses`."""

import json

import pytest

from tests.factories import AgentIdentityFactory
from tests.kit.api import STATS_URL
from tests.kit.broker import (
    CONNECTIONS_URL,
    CONSUMERS_URL,
    QUEUES_URL,
    SNAPSHOT_CALLS,
    mock_broker_snapshot,
)
from tests.kit.commands import run_connection_stats


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
    argv, expected_agents, command_fleet, answering_broker
):
    # given
    argv = [str(command_fleet[value].uuid) if value in command_fleet else value for value in argv]

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
    params, expected_exit_code, command_fleet, answering_broker, staff_user, client_for, settings
):
    # given: one shared snapshot serves both, as it would within its TTL
    settings.BROKER_SNAPSHOT_TTL = 60
    values = {
        key: str(
            command_fleet[value].customer.uuid
            if key == "customer_uuid"
            else command_fleet[value].uuid
        )
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
    argv, expected_message, command_fleet, broker
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
