"""The stats filters narrow the agents and the summary follows; a bad value is a 400 with
field errors before the broker is asked."""

import pytest

from marketplace.names import AgentServiceState
from tests.factories import OfferingFactory
from tests.kit.api import STATS_URL
from tests.kit.broker import mock_broker_snapshot
from tests.kit.fleet import Fleet


@pytest.fixture
def filter_fleet(db):
    """alpha-login (Active twice, connected, 1 message) and beta-batch (Error, disconnected,
    10 messages) on the first customer's offering; gamma-login (Idle, connected, 100
    messages) on the second customer's offering."""
    first_offering, second_offering = OfferingFactory(), OfferingFactory()
    fleet = Fleet()
    plan = [
        ("alpha-login", first_offering, [AgentServiceState.ACTIVE] * 2, True, 1),
        ("beta-batch", first_offering, [AgentServiceState.ERROR], False, 10),
        ("gamma-login", second_offering, [AgentServiceState.IDLE], True, 100),
    ]
    for index, (name, offering, states, is_connected, messages) in enumerate(plan):
        agent = fleet.add_agent(name, offering=offering, services=states)
        fleet.add_queue(
            agent,
            messages=messages,
            consumers=1,
            connected_from=f"10.0.0.{index + 1}" if is_connected else None,
        )
    return {
        "first_offering": first_offering,
        "second_customer": second_offering.customer,
        "connections": fleet.connections,
        "queues": fleet.queues,
    }


@pytest.mark.parametrize(
    ("params", "expected_names", "expected_connected", "expected_messages"),
    [
        ({}, ["alpha-login", "beta-batch", "gamma-login"], 2, 111),
        ({"offering_uuid": "first_offering"}, ["alpha-login", "beta-batch"], 1, 11),
        ({"customer_uuid": "second_customer"}, ["gamma-login"], 1, 100),
        ({"connected": "true"}, ["alpha-login", "gamma-login"], 2, 101),
        ({"connected": "false"}, ["beta-batch"], 0, 10),
        ({"service_state": "ERROR"}, ["beta-batch"], 0, 10),
        ({"service_state": "idle"}, ["gamma-login"], 1, 100),
        ({"service_state": "Active"}, ["alpha-login"], 1, 1),
        ({"name": "LOGIN"}, ["alpha-login", "gamma-login"], 2, 101),
        ({"name": "a-bat"}, ["beta-batch"], 0, 10),
        ({"offering_uuid": "first_offering", "connected": "false"}, ["beta-batch"], 0, 10),
    ],
)
def test_stats_filters_narrow_the_agents_and_the_summary_follows(
    params,
    expected_names,
    expected_connected,
    expected_messages,
    filter_fleet,
    staff_user,
    client_for,
    broker,
):
    # given
    mock_broker_snapshot(
        broker, connections=filter_fleet["connections"], queues=filter_fleet["queues"]
    )
    query = {
        key: str(filter_fleet[value].uuid) if key.endswith("_uuid") else value
        for key, value in params.items()
    }

    # when
    response = client_for(staff_user).get(STATS_URL, query)

    # then
    assert response.status_code == 200
    body = response.json()
    assert sorted(agent["name"] for agent in body["agents"]) == expected_names
    assert body["summary"]["total_agents"] == len(expected_names)
    assert body["summary"]["connected_agents"] == expected_connected
    assert body["summary"]["disconnected_agents"] == len(expected_names) - expected_connected
    assert body["summary"]["total_queued_messages"] == expected_messages
    assert body["summary"]["total_queues"] == len(expected_names)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offering_uuid", "not-a-uuid"),
        ("customer_uuid", "12345"),
        ("connected", "maybe"),
        ("service_state", "busy"),
    ],
)
def test_stats_reject_an_invalid_filter_with_a_field_error_before_asking_the_broker(
    field, value, staff_user, client_for, broker
):
    # given
    mock_broker_snapshot(broker)

    # when
    response = client_for(staff_user).get(STATS_URL, {field: value})

    # then
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert isinstance(body[field], list)
    assert body[field]
    assert len(broker.calls) == 0
