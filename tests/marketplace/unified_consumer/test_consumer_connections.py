"""Broker connections logged in as an agent's event consumer: recorded from the broker's
events and by the reconcile, on the timeline, and in the envelope like a subscription's."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.envelope.selectors import build_connection_envelope
from marketplace.envelope.services import (
    reconcile_broker_connections,
    record_connection_closed,
    record_connection_opened,
)
from marketplace.models import AgentBrokerConnection, AgentConnectionEvent, EventConsumer
from rmq.events import ConnectionClosed, ConnectionOpened
from rmq.types import BrokerConnection
from tests.factories import EventConsumerFactory, EventSubscriptionFactory, UserFactory
from tests.kit.envelope import beat_as_active_observer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NODE = "rabbit@broker-1"
# The legacy reconcile's bound (tests/marketplace/test_reconcile.py): finding the
# consumers' logins costs one query more, and stays within it.
MAX_RECONCILE_QUERIES = 15


def opened(consumer: EventConsumer, *, name: str = "c1", vhost: str | None = None):
    return ConnectionOpened(
        name=name,
        user=consumer.rmq_username,
        vhost=consumer.user.uuid.hex if vhost is None else vhost,
        node=NODE,
        peer_host="10.1.2.3",
        protocol="Web STOMP 1.2",
        connected_at=NOW - timedelta(minutes=1),
    )


def listed(consumer: EventConsumer, *, index: int = 0) -> BrokerConnection:
    """The consumer's login as the management API lists it."""
    return listed_login(consumer.rmq_username, consumer.user.uuid.hex, index=index)


def listed_login(user: str, vhost: str, *, index: int, protocol: str = "Web STOMP 1.2"):
    return BrokerConnection(
        name=f"10.1.2.{index}:5{index:04d} -> 10.0.1.1:15674 ({protocol})",
        user=user,
        vhost=vhost,
        peer_host=f"10.1.2.{index}",
        connected_at=NOW - timedelta(minutes=5),
        state="running",
        recv_oct=1,
        send_oct=1,
        protocol=protocol,
        node=NODE,
    )


def timeline(identity) -> list[tuple[str, str, object, object]]:
    return [
        (event.kind, event.reason, event.event_consumer_uuid, event.subscription_uuid)
        for event in AgentConnectionEvent.objects.filter(identity=identity).order_by(
            "occurred_at", "id"
        )
    ]


@pytest.fixture
def consumer(db) -> EventConsumer:
    beat_as_active_observer(is_broker_available=True, at=NOW)
    return EventConsumerFactory()


def test_connection_as_the_consumer_user_is_recorded_as_the_agents(consumer):
    # when the broker announces a login as the consumer's user in its owner's vhost
    assert record_connection_opened(opened(consumer)) is True

    # then it is the agent's connection, through its consumer, and on its timeline
    row = AgentBrokerConnection.objects.get()
    assert (row.identity_id, row.event_consumer_id, row.subscription_id) == (
        consumer.identity_id,
        consumer.pk,
        None,
    )
    assert timeline(consumer.identity) == [("connected", "opened", consumer.uuid, None)]

    # and the envelope treats it like a subscription's connection
    envelope = build_connection_envelope(consumer.identity, now=NOW)
    assert envelope.judgement.deployment_mode == "connected"
    assert envelope.judgement.connection_status == "online"
    assert (envelope.transport, envelope.open_connections) == ("ws", 1)
    assert (envelope.state.owner_pod, envelope.ws_mesh_pod_id) == (NODE, NODE)
    assert envelope.state.connected_since == NOW - timedelta(minutes=1)


def test_closing_the_consumer_connection_makes_the_agent_offline(consumer):
    record_connection_opened(opened(consumer))

    assert record_connection_closed(ConnectionClosed(name="c1", node=NODE, closed_at=NOW)) is True

    assert AgentBrokerConnection.objects.count() == 0
    assert timeline(consumer.identity) == [
        ("connected", "opened", consumer.uuid, None),
        ("disconnected", "closed", consumer.uuid, None),
    ]
    envelope = build_connection_envelope(consumer.identity, now=NOW)
    assert (envelope.judgement.connection_status, envelope.judgement.status_reason) == (
        "offline",
        "no_broker_connection",
    )
    assert envelope.flaps_24h == 1


@pytest.mark.parametrize("vhost", ["", "0" * 32, "/"])
def test_a_login_as_the_consumer_user_in_another_vhost_is_not_the_agents(consumer, vhost):
    assert record_connection_opened(opened(consumer, vhost=vhost)) is False

    assert AgentBrokerConnection.objects.count() == 0
    assert AgentConnectionEvent.objects.count() == 0


def test_consumer_agent_without_a_connection_is_an_offline_event_consumer(consumer):
    envelope = build_connection_envelope(consumer.identity, now=NOW)

    assert envelope.judgement.deployment_mode == "connected"
    assert envelope.judgement.status_reason == "no_broker_connection"
    assert envelope.transport == "ws"


def _mixed_fleet(size, *, start=0):
    """`size` consumer agents and `size` legacy agents, each with a listed login."""
    logins = []
    for index in range(start, start + size):
        logins.append(listed(EventConsumerFactory(), index=index))
        subscription = EventSubscriptionFactory()
        logins.append(
            listed_login(
                subscription.uuid.hex, subscription.user.uuid.hex, index=index, protocol="STOMP"
            )
        )
    return logins


def _count_queries(connections: list[BrokerConnection], *, at: datetime) -> int:
    with CaptureQueriesContext(connection) as queries:
        reconcile_broker_connections(connections, at=at)
    return len(queries)


def test_reconcile_records_and_closes_consumer_and_legacy_logins_in_fixed_queries(db):
    # given one consumer agent and one legacy agent, then 25 of each, all listed
    small, large = _mixed_fleet(1), _mixed_fleet(25, start=1)

    # when the reconcile finds them, then finds them gone
    found_small = _count_queries(small, at=NOW)
    found_large = _count_queries(small + large, at=NOW)
    gone = _count_queries([], at=NOW + timedelta(seconds=60))

    # then every login is recorded through its consumer or subscription, then closed
    assert found_small == found_large <= MAX_RECONCILE_QUERIES
    assert gone <= MAX_RECONCILE_QUERIES
    reasons = list(
        AgentConnectionEvent.objects.filter(event_consumer_uuid__isnull=False).values_list(
            "reason", flat=True
        )
    )
    assert sorted(reasons) == ["found_at_reconcile"] * 26 + ["gone_at_reconcile"] * 26
    assert AgentConnectionEvent.objects.filter(subscription_uuid__isnull=False).count() == 52
    assert AgentBrokerConnection.objects.count() == 0


def test_reconcile_keeps_an_announced_consumer_login_within_the_grace_period(consumer, settings):
    # given a login known only from the broker's announcement, not listed yet
    settings.OBSERVER_RECONCILE_GRACE_SECONDS = 30
    record_connection_opened(opened(consumer))  # connected one minute before NOW
    just_connected = NOW - timedelta(minutes=1) + timedelta(seconds=10)

    # when a reconcile runs within the grace period, then after it
    reconcile_broker_connections([], at=just_connected)
    kept = AgentBrokerConnection.objects.filter(event_consumer=consumer).exists()
    reconcile_broker_connections([], at=NOW)

    # then it was kept, then closed
    assert kept is True
    assert timeline(consumer.identity) == [
        ("connected", "opened", consumer.uuid, None),
        ("disconnected", "gone_at_reconcile", consumer.uuid, None),
    ]


def test_reconcile_confirms_a_listed_consumer_login_and_its_websocket(consumer):
    reconcile_broker_connections([listed(consumer)], at=NOW)
    later = NOW + timedelta(seconds=60)

    reconcile_broker_connections([listed(consumer)], at=later)

    row = AgentBrokerConnection.objects.get()
    assert (row.event_consumer_id, row.last_confirmed_at) == (consumer.pk, later)
    assert consumer.identity.connection_state.ws_last_seen == later
    assert timeline(consumer.identity) == [("connected", "found_at_reconcile", consumer.uuid, None)]


def test_timeline_api_names_the_consumer_a_connection_logged_in_as(consumer, client_for):
    # given the agent's consumer logged in and out
    record_connection_opened(opened(consumer))
    record_connection_closed(ConnectionClosed(name="c1", node=NODE, closed_at=NOW))

    # when its owner (an owner of the agent's customer) reads the timeline
    identity = consumer.identity
    identity.offering.customer.owners.add(consumer.user)
    response = client_for(consumer.user).get(
        f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/connection_events/"
    )

    # then
    assert response.status_code == 200
    assert [
        (e["kind"], e["subscription_uuid"], e["event_consumer_uuid"]) for e in response.json()
    ] == [
        ("disconnected", None, str(consumer.uuid)),
        ("connected", None, str(consumer.uuid)),
    ]


def test_connection_totals_count_a_consumer_agent_as_connected_in_fixed_queries(
    consumer, client_for
):
    # given a consumer agent (logged in) of a staff reader's fleet
    staff = client_for(UserFactory(is_staff=True))
    record_connection_opened(opened(consumer))

    def totals() -> tuple[dict, int]:
        with CaptureQueriesContext(connection) as queries:
            response = staff.post("/api/agents/get_connection_stats/", {}, format="json")
        return response.json()["stats"], len(queries)

    # when the totals are read, then again with ten more consumer agents
    one, one_queries = totals()
    EventConsumerFactory.create_batch(10)
    eleven, eleven_queries = totals()

    # then every consumer agent consumes events over the broker, whatever the fleet size
    assert one["by_deployment_mode"] == {"connected": 1, "hosted": 0}
    assert eleven["by_deployment_mode"] == {"connected": 11, "hosted": 0}
    assert eleven["by_transport"] == {"ws": 11, "callback": 0}
    assert eleven["by_transport_detail"]["ws"] == 11
    assert one_queries == eleven_queries
