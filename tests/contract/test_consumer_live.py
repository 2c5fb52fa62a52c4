"""The unified event consumer on the real RabbitMQ and PostgreSQL: a real STOMP-over-WebSocket
client logged in as the consumer's broker user makes the stats say connected, and the
connection observer (the broker's event exchange) records it as the agent's."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import stomp
from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from marketplace.envelope.observer import ConnectionObserver
from marketplace.envelope.selectors import build_connection_envelope
from marketplace.models import AgentConnectionEvent, EventConsumer, ObserverStatus
from marketplace.registration.vhost_limits import build_owner_vhost_limits
from rmq.client import ManagementClient
from rmq.provisioning import provision_consumer
from tests.factories import (
    AgentIdentityFactory,
    CustomerFactory,
    EventConsumerFactory,
    OfferingFactory,
    UserFactory,
)

STATS = "/api/marketplace-site-agent-connection-stats/"
WAIT_SECONDS = 40


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")


def provision(consumer: EventConsumer) -> str:
    """Provision the consumer as register_queue does; return its broker password."""
    password = Token.objects.get_or_create(user=consumer.user)[0].key
    provision_consumer(
        ManagementClient.from_settings(),
        vhost=consumer.vhost,
        username=consumer.rmq_username,
        password=password,
        consumer_hex=consumer.uuid.hex,
        limits=build_owner_vhost_limits(consumer.user),
    )
    return password


def connect_as(consumer: EventConsumer, password: str, *, subscribe: bool):
    client = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=consumer.vhost
    )
    client.connect(login=consumer.rmq_username, passcode=password, wait=True)
    if subscribe:
        client.subscribe(destination=f"/amq/queue/{consumer.queue_name}", id="q", ack="auto")
    return client


@pytest.fixture
def consumer(real_broker, real_postgres):
    """A consumer agent whose owner owns the offering's customer; its broker user is removed
    afterwards (the real_broker fixture removes the owner's vhost)."""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    made = EventConsumerFactory(identity=AgentIdentityFactory(offering=offering, created_by=owner))
    yield made
    requests.delete(
        f"{real_broker}/api/users/{made.rmq_username}",
        auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
        timeout=5,
    )


def agent_stats(client) -> dict[str, Any]:
    response = client.get(STATS)
    assert response.status_code == 200
    (agent,) = response.json()["agents"]
    return agent


@pytest.mark.broker
def test_stats_follow_a_real_client_of_the_consumer_queue(
    consumer, support_user, client_for, settings
):
    # given a provisioned consumer nobody reads, and stats that ask the broker every time
    settings.BROKER_SNAPSHOT_TTL = 0
    password = provision(consumer)
    client = client_for(support_user)
    before = agent_stats(client)
    assert (before["connected"], before["delivery_blocked_reason"]) == (False, None)
    assert [(q["kind"], q["consumers"], q["exists_on_broker"]) for q in before["queues"]] == [
        ("consumer", 0, True)
    ]

    # when a real STOMP-over-WebSocket client subscribes to the queue as the consumer's user
    stomp_client = connect_as(consumer, password, subscribe=True)
    try:
        # then the agent is connected and its queue has the consumer
        during = wait_for(
            lambda: (agent := agent_stats(client))["queues"][0]["consumers"] == 1 and agent,
            "the stats list the consumer",
        )
        assert during["connected"] is True
        assert during["event_consumer_uuid"] == str(consumer.uuid)
    finally:
        stomp_client.disconnect()

    # when it disconnects, then the agent is disconnected again
    wait_for(lambda: agent_stats(client)["connected"] is False, "the stats say disconnected")


@pytest.fixture
def observer(consumer, transactional_db, settings) -> Iterator[ConnectionObserver]:
    """The observer running in a thread, as `manage.py observe_connections` runs it."""
    settings.OBSERVER_HEARTBEAT_SECONDS = 0.3
    settings.OBSERVER_RECONCILE_SECONDS = 600
    running = ConnectionObserver()

    def run() -> None:
        try:
            running.run()
        finally:
            db_connection.close()

    thread = threading.Thread(target=run, daemon=True)
    started_at = timezone.now()
    thread.start()
    try:
        wait_for(
            lambda: ObserverStatus.objects.filter(last_reconciled_at__gte=started_at).exists(),
            "the observer reconciled",
        )
        yield running
    finally:
        running.stop.set()
        thread.join(timeout=WAIT_SECONDS)
    assert not thread.is_alive()


def envelope_of(consumer: EventConsumer):
    return build_connection_envelope(consumer.identity, now=timezone.now())


def consumer_events(consumer: EventConsumer) -> list[tuple[str, str, Any]]:
    return [
        (event.kind, event.reason, event.event_consumer_uuid)
        for event in AgentConnectionEvent.objects.filter(identity=consumer.identity).order_by(
            "occurred_at", "id"
        )
    ]


@pytest.mark.broker
def test_observer_records_a_real_login_as_the_consumer_user_from_the_event_exchange(
    consumer, observer
):
    # given a provisioned consumer agent the observer sees as offline
    password = provision(consumer)
    assert envelope_of(consumer).judgement.connection_status == "offline"

    # when a real client logs in as its broker user (before subscribing, as the agent does)
    stomp_client = connect_as(consumer, password, subscribe=False)
    try:
        # then the envelope is online over WebSocket and the timeline names the consumer
        wait_for(
            lambda: envelope_of(consumer).judgement.connection_status in {"online", "healthy"},
            "envelope online",
        )
        envelope = envelope_of(consumer)
        assert (envelope.transport, envelope.state.owner_pod) == ("ws", "rabbit@localhost")
        assert consumer_events(consumer) == [("connected", "opened", consumer.uuid)]
        event = AgentConnectionEvent.objects.get(identity=consumer.identity)
        assert (event.subscription_uuid, event.peer_host) == (None, "127.0.0.1")
    finally:
        stomp_client.disconnect()

    # when it disconnects, then the envelope is offline and the timeline says so
    wait_for(lambda: envelope_of(consumer).judgement.connection_status == "offline", "offline")
    assert consumer_events(consumer) == [
        ("connected", "opened", consumer.uuid),
        ("disconnected", "closed", consumer.uuid),
    ]
