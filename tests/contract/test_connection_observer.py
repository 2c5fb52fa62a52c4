"""The connection observer on the real broker: a real STOMP-over-WebSocket client's
connect and disconnect reach the envelope and the timeline, also across an observer
outage (reconciliation on start)."""

from collections.abc import Iterator

import pytest
import stomp
from django.utils import timezone

from marketplace.envelope.selectors import build_connection_envelope
from marketplace.models import AgentConnectionEvent, ObserverStatus
from rmq.client import ManagementClient
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.observer_thread import ObserverThread
from tests.kit.polling import wait_until
from tests.kit.real_broker import provision_agent

WAIT_SECONDS = 25


@pytest.fixture
def agent(transactional_db, real_broker, settings):
    settings.OBSERVER_HEARTBEAT_SECONDS = 0.3
    settings.OBSERVER_RECONCILE_SECONDS = 600
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    identity = AgentIdentityFactory(offering=offering, created_by=owner)
    subscription, queue = provision_agent(
        identity, owner=owner, object_type="order", source_ip=None
    )
    token = owner.auth_token.key
    return identity, owner.uuid.hex, subscription.uuid.hex, token, queue.queue_name


@pytest.fixture
def observers() -> Iterator[list[ObserverThread]]:
    started: list[ObserverThread] = []
    yield started
    for observer in started:
        if observer.thread.is_alive():
            observer.stop()


def start_observer(observers: list[ObserverThread]) -> ObserverThread:
    observer = ObserverThread(wait_seconds=WAIT_SECONDS)
    observers.append(observer)
    observer.start(since=timezone.now())
    return observer


def connect_client(vhost: str, login: str, token: str, queue: str) -> stomp.WSStompConnection:
    client = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=vhost
    )
    client.connect(login=login, passcode=token, wait=True)
    client.subscribe(destination=f"/amq/queue/{queue}", id="q", ack="auto")
    return client


def envelope_status(identity) -> str:
    return build_connection_envelope(identity, now=timezone.now()).judgement.connection_status


def events_of(identity) -> list[tuple[str, str]]:
    return [
        (event.kind, event.reason)
        for event in AgentConnectionEvent.objects.filter(identity=identity).order_by(
            "occurred_at", "id"
        )
    ]


def test_live_client_connect_and_disconnect_reach_envelope_and_timeline(agent, observers):
    identity, vhost, login, token, queue = agent
    start_observer(observers)
    assert envelope_status(identity) == "offline"

    # when a real STOMP-over-WebSocket client connects as the agent's subscription
    client = connect_client(vhost, login, token, queue)
    try:
        # then the envelope flips to online and the timeline records the connect
        wait_until(
            lambda: envelope_status(identity) in {"online", "healthy"},
            timeout=WAIT_SECONDS,
            message="envelope online",
        )
        envelope = build_connection_envelope(identity, now=timezone.now())
        assert envelope.transport == "ws"
        assert envelope.state.owner_pod == "rabbit@localhost"
        assert envelope.ws_mesh_pod_id == "rabbit@localhost"
        assert envelope.state.connected_since is not None
        assert envelope.state.ws_last_seen is not None
        assert events_of(identity) == [("connected", "opened")]
        event = AgentConnectionEvent.objects.get(identity=identity)
        assert event.peer_host == "127.0.0.1"
        assert event.subscription_uuid.hex == login
    finally:
        client.disconnect()

    # when it disconnects, then the envelope is offline and the timeline has the disconnect
    wait_until(
        lambda: envelope_status(identity) == "offline",
        timeout=WAIT_SECONDS,
        message="envelope offline",
    )
    assert events_of(identity) == [("connected", "opened"), ("disconnected", "closed")]
    assert build_connection_envelope(identity, now=timezone.now()).flaps_24h == 1


def test_state_is_right_after_the_observer_missed_a_connect_and_a_disconnect(agent, observers):
    identity, vhost, login, token, queue = agent
    first = start_observer(observers)

    # given the observer is killed, and the agent connects while it is down
    first.stop()
    client = connect_client(vhost, login, token, queue)
    try:
        # wait until the management API lists the connection (3-5 s after connecting)
        broker = ManagementClient.from_settings()
        wait_until(
            lambda: any(c["user"] == login for c in broker.get_json(["connections"])),
            timeout=WAIT_SECONDS,
            message="the broker lists the connection",
        )
        assert envelope_status(identity) == "offline"

        # when the observer restarts, then reconciliation finds the connection
        second = start_observer(observers)
        assert envelope_status(identity) in {"online", "healthy"}
        assert events_of(identity) == [("connected", "found_at_reconcile")]

        # given it is killed again, and the agent disconnects while it is down
        second.stop()
    finally:
        client.disconnect()
    wait_until(
        lambda: not any(c["user"] == login for c in broker.get_json(["connections"])),
        timeout=WAIT_SECONDS,
        message="the broker drops the connection",
    )
    assert envelope_status(identity) in {"online", "healthy"}

    # when it restarts once more, then the missed disconnect is recorded and it is offline
    start_observer(observers)
    assert envelope_status(identity) == "offline"
    assert events_of(identity) == [
        ("connected", "found_at_reconcile"),
        ("disconnected", "gone_at_reconcile"),
    ]


def test_observer_reports_broker_unavailable_instead_of_agents_offline(agent, observers, settings):
    identity, *_ = agent
    # given the observer cannot reach the broker
    settings.RABBITMQ_AMQP_URL = "amqp://guest:guest@127.0.0.1:9/%2F"
    observer = ObserverThread(wait_seconds=WAIT_SECONDS)
    observers.append(observer)
    observer.thread.start()
    wait_until(
        lambda: ObserverStatus.objects.filter(
            is_broker_available=False, last_beat_at__isnull=False
        ).exists(),
        timeout=WAIT_SECONDS,
        message="the observer says the broker is unavailable",
    )

    # then the envelope is served from the database as unknown, not offline
    envelope = build_connection_envelope(identity, now=timezone.now())
    assert envelope.judgement.connection_status == "unknown"
    assert envelope.judgement.status_reason == "broker_unavailable"
