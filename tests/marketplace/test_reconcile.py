"""The observer's reconcile: the recorded connections made equal to one broker snapshot,
in a fixed number of queries whatever the fleet size."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.envelope.services import reconcile_broker_connections
from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    EventSubscription,
)
from rmq.types import BrokerConnection
from tests.factories import EventSubscriptionFactory

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NODE = "rabbit@broker-0"
FLEET = 25
# subscriptions, recorded connections, the changed agents' ids, create + lock their
# states, their connections, delete, insert, timeline, re-read, state update, confirm,
# ws_last_seen; plus the savepoint pair of the test's transaction
MAX_RECONCILE_QUERIES = 15


def listed(subscription: EventSubscription, *, index: int = 0) -> BrokerConnection:
    """The subscription's connection as the management API lists it."""
    return BrokerConnection(
        name=f"10.0.0.{index}:5{index:04d} -> 10.0.1.1:15674",
        user=subscription.uuid.hex,
        vhost=subscription.user.uuid.hex,
        peer_host=f"10.0.0.{index}",
        connected_at=NOW - timedelta(minutes=5),
        state="running",
        recv_oct=1,
        send_oct=1,
        protocol="Web STOMP 1.2",
        node=NODE,
    )


def make_fleet(size: int) -> list[EventSubscription]:
    return [EventSubscriptionFactory.create() for _ in range(size)]


def count_reconcile_queries(connections: list[BrokerConnection], *, at: datetime) -> int:
    with CaptureQueriesContext(connection) as queries:
        reconcile_broker_connections(connections, at=at)
    return len(queries)


def reasons() -> list[str]:
    return sorted(AgentConnectionEvent.objects.values_list("reason", flat=True))


@pytest.mark.parametrize("size", [1, FLEET])
def test_reconcile_records_every_connection_found_in_fixed_queries(
    db, size, django_assert_max_num_queries
):
    # given agents whose connections the observer has not recorded
    fleet = make_fleet(size)
    connections = [listed(sub, index=i) for i, sub in enumerate(fleet)]

    # when
    with django_assert_max_num_queries(MAX_RECONCILE_QUERIES):
        reconcile_broker_connections(connections, at=NOW)

    # then each agent has its connection, its timeline entry and its state
    assert AgentBrokerConnection.objects.count() == size
    assert reasons() == ["found_at_reconcile"] * size
    states = AgentConnectionState.objects.all()
    assert [(s.connected_since, s.owner_pod, s.transport) for s in states] == [
        (NOW - timedelta(minutes=5), NODE, "ws")
    ] * size
    assert {s.ws_last_seen for s in states} == {NOW}


@pytest.mark.parametrize("size", [1, FLEET])
def test_reconcile_closes_every_connection_gone_in_fixed_queries(
    db, size, django_assert_max_num_queries
):
    # given connections a previous snapshot listed, which the broker no longer lists
    fleet = make_fleet(size)
    reconcile_broker_connections([listed(sub, index=i) for i, sub in enumerate(fleet)], at=NOW)

    # when
    later = NOW + timedelta(seconds=60)
    with django_assert_max_num_queries(MAX_RECONCILE_QUERIES):
        reconcile_broker_connections([], at=later)

    # then every one is closed, on the timeline too, and no agent holds a connection
    assert AgentBrokerConnection.objects.count() == 0
    assert reasons() == ["found_at_reconcile"] * size + ["gone_at_reconcile"] * size
    assert (
        list(AgentConnectionState.objects.values_list("connected_since", "owner_pod"))
        == [(None, "")] * size
    )


def test_reconcile_costs_the_same_queries_for_one_agent_as_for_a_fleet(db):
    # given one agent, and a fleet, each with one connection found, then one gone,
    # then one still there
    costs = {}
    for size in (1, FLEET):
        AgentConnectionEvent.objects.all().delete()
        EventSubscription.objects.all().delete()
        connections = [listed(sub, index=i) for i, sub in enumerate(make_fleet(size))]

        # when each change is reconciled
        costs[size] = (
            count_reconcile_queries(connections, at=NOW),
            count_reconcile_queries(connections, at=NOW + timedelta(seconds=60)),
            count_reconcile_queries([], at=NOW + timedelta(seconds=120)),
        )

    # then the fleet costs what one agent costs
    assert costs[FLEET] == costs[1]


def test_reconcile_keeps_a_connection_of_a_user_that_is_not_an_agent_out(db):
    # given a broker connection of a user that is no subscription of ours
    stranger = BrokerConnection(
        name="stranger",
        user="guest",
        vhost="/",
        peer_host="10.9.9.9",
        connected_at=NOW,
        state="running",
        recv_oct=0,
        send_oct=0,
        protocol="AMQP 0-9-1",
        node=NODE,
    )

    # when
    reconcile_broker_connections([stranger], at=NOW)

    # then nothing is recorded
    assert AgentBrokerConnection.objects.count() == 0
    assert AgentConnectionEvent.objects.count() == 0
