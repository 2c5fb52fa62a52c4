"""A reconcile does not close a connection the management API has merely not listed yet.

The broker announces a connection (connection.created) 3-5 s before its management API
lists it; a reconcile in between must not record a spurious disconnect and a flap.
"""

from datetime import UTC, datetime, timedelta

import pytest

from marketplace.envelope.services import (
    reconcile_broker_connections,
    record_connection_opened,
)
from marketplace.models import AgentBrokerConnection, AgentConnectionEvent, EventSubscription
from rmq.events import ConnectionOpened
from rmq.types import BrokerConnection
from tests.factories import EventSubscriptionFactory

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GRACE_SECONDS = 30
NAME = "10.0.0.7:50000 -> 10.0.1.1:15674"


@pytest.fixture
def subscription(db, settings) -> EventSubscription:
    settings.OBSERVER_RECONCILE_GRACE_SECONDS = GRACE_SECONDS
    return EventSubscriptionFactory()


def announce(subscription: EventSubscription, *, at: datetime) -> None:
    """The broker's connection.created event reaches the observer."""
    assert record_connection_opened(
        ConnectionOpened(
            name=NAME,
            user=subscription.uuid.hex,
            vhost=subscription.user.uuid.hex,
            node="rabbit@broker-0",
            peer_host="10.0.0.7",
            protocol="Web STOMP 1.2",
            connected_at=at,
        )
    )


def listed(subscription: EventSubscription, *, at: datetime) -> BrokerConnection:
    return BrokerConnection(
        name=NAME,
        user=subscription.uuid.hex,
        vhost=subscription.user.uuid.hex,
        peer_host="10.0.0.7",
        connected_at=at,
        state="running",
        recv_oct=0,
        send_oct=0,
        protocol="Web STOMP 1.2",
        node="rabbit@broker-0",
    )


def timeline() -> list[tuple[str, str]]:
    return [
        (event.kind, event.reason)
        for event in AgentConnectionEvent.objects.order_by("occurred_at", "id")
    ]


def test_reconcile_keeps_an_announced_connection_the_snapshot_does_not_list_yet(subscription):
    # given a connection announced 4 s ago, which the management API does not list yet
    announce(subscription, at=NOW - timedelta(seconds=4))

    # when a reconcile runs on that snapshot
    reconcile_broker_connections([], at=NOW)

    # then the connection stays open: no disconnect, no flap
    assert AgentBrokerConnection.objects.filter(name=NAME).exists()
    assert timeline() == [("connected", "opened")]


def test_reconcile_keeps_it_until_the_grace_period_has_passed(subscription):
    # given an announced connection never listed
    announce(subscription, at=NOW)

    # when reconciles run just within the grace period
    reconcile_broker_connections([], at=NOW + timedelta(seconds=GRACE_SECONDS - 1))

    # then it is still open
    assert timeline() == [("connected", "opened")]


def test_reconcile_closes_an_announced_connection_never_listed_after_the_grace_period(
    subscription,
):
    # given an announced connection the management API has not listed for the grace period
    announce(subscription, at=NOW)

    # when
    reconcile_broker_connections([], at=NOW + timedelta(seconds=GRACE_SECONDS))

    # then it is closed as gone
    assert not AgentBrokerConnection.objects.filter(name=NAME).exists()
    assert timeline() == [("connected", "opened"), ("disconnected", "gone_at_reconcile")]


def test_reconcile_closes_a_connection_it_saw_listed_at_once_when_it_is_gone(subscription):
    # given an announced connection that a snapshot then listed
    announce(subscription, at=NOW)
    reconcile_broker_connections([listed(subscription, at=NOW)], at=NOW + timedelta(seconds=5))

    # when the next snapshot, still within the grace period, no longer lists it
    reconcile_broker_connections([], at=NOW + timedelta(seconds=10))

    # then it is gone: the management API does not forget a live connection
    assert not AgentBrokerConnection.objects.filter(name=NAME).exists()
    assert timeline() == [("connected", "opened"), ("disconnected", "gone_at_reconcile")]


def test_a_listed_announced_connection_is_neither_reopened_nor_closed(subscription):
    # given an announced connection
    announce(subscription, at=NOW)

    # when the snapshot lists it, long after
    reconcile_broker_connections(
        [listed(subscription, at=NOW)], at=NOW + timedelta(seconds=10 * GRACE_SECONDS)
    )

    # then the timeline has only its opening, and the snapshot confirmed it
    assert timeline() == [("connected", "opened")]
    confirmed = AgentBrokerConnection.objects.get(name=NAME).last_confirmed_at
    assert confirmed == NOW + timedelta(seconds=10 * GRACE_SECONDS)
