"""RabbitMQ's connection events (rabbitmq_event_exchange): the Erlang-term headers parsed
into values, the protocol mapped to a transport, and the stream consuming them, with pika's
connection faked at its boundary."""

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pika.exceptions
import pytest

from marketplace.names import AgentTransport
from rmq import events
from rmq.events import (
    EVENT_EXCHANGE,
    ConnectionClosed,
    ConnectionEventStream,
    ConnectionOpened,
    parse_erlang_address,
    parse_erlang_protocol,
    parse_event,
)
from rmq.exceptions import BrokerUnavailable

CONNECTED_AT_MS = 1_795_502_668_419
CONNECTED_AT = datetime(2026, 11, 24, 6, 44, 28, 419000, tzinfo=UTC)
PUBLISHED_AT_MS = 1_795_502_670_000
PUBLISHED_AT = datetime(2026, 11, 24, 6, 44, 30, tzinfo=UTC)


def created_headers(**changes: Any) -> dict[str, Any]:
    """The headers of a connection.created event as pika hands them over: text as bytes,
    numbers as ints, the address and the protocol in Erlang term syntax."""
    headers: dict[str, Any] = {
        "name": b"127.0.0.1:51270 -> 127.0.0.1:15674",
        "type": b"network",
        "node": b"rabbit@vm",
        "vhost": b"9a2b386ca3464aee9f313c0f20518f57",
        "user": b"0233d0c94a9544c0bca9b1709dc3c24d",
        "protocol": b"{'Web STOMP',\"1.2\"}",
        "peer_host": b"{127,0,0,1}",
        "connected_at": CONNECTED_AT_MS,
        "timestamp_in_ms": PUBLISHED_AT_MS,
    }
    headers.update(changes)
    return {key: value for key, value in headers.items() if value is not None}


# --- the transport of a protocol ----------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "transport"),
    [
        ("Web STOMP 1.2", "ws"),
        ("STOMP 1.2", "stomp"),
        ("STOMP 1.0", "stomp"),
        ("AMQP 0-9-1", "amqp"),
        ("AMQP 1.0", "amqp"),
        ("MQTT 3.1.1", ""),
        ("Web MQTT 3.1.1", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_a_broker_protocol_maps_to_the_envelopes_transport(protocol, transport):
    assert (AgentTransport.of_protocol(protocol) or "") == transport


# --- Erlang terms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "address"),
    [
        ("{127,0,0,1}", "127.0.0.1"),
        (" {10,1,2,3} ", "10.1.2.3"),
        ("{0,0,0,0,0,0,0,1}", "0:0:0:0:0:0:0:1"),
        ("{8193,3512,0,0,0,0,0,255}", "2001:db8:0:0:0:0:0:ff"),
        ("{1,2,3}", "{1,2,3}"),
        ("10.0.0.7", "10.0.0.7"),
        ("", ""),
    ],
)
def test_parse_erlang_address_reads_ipv4_and_ipv6_tuples_and_leaves_anything_else(term, address):
    assert parse_erlang_address(term) == address


@pytest.mark.parametrize(
    ("term", "protocol"),
    [
        ("{'Web STOMP',\"1.2\"}", "Web STOMP 1.2"),
        ("{'STOMP',\"1.0\"}", "STOMP 1.0"),
        ("{0,9,1}", "AMQP 0-9-1"),
        (" {0,9,1} ", "AMQP 0-9-1"),
        ("{1,0}", "{1,0}"),
        ("AMQP 0-9-1", "AMQP 0-9-1"),
        ("", ""),
    ],
)
def test_parse_erlang_protocol_reads_named_and_numbered_versions(term, protocol):
    assert parse_erlang_protocol(term) == protocol


# --- parse_event ----------------------------------------------------------------------------


def test_a_created_event_becomes_a_connection_opened_with_its_terms_parsed():
    # when
    event = parse_event("connection.created", created_headers())

    # then
    assert event == ConnectionOpened(
        name="127.0.0.1:51270 -> 127.0.0.1:15674",
        user="0233d0c94a9544c0bca9b1709dc3c24d",
        vhost="9a2b386ca3464aee9f313c0f20518f57",
        node="rabbit@vm",
        peer_host="127.0.0.1",
        protocol="Web STOMP 1.2",
        connected_at=CONNECTED_AT,
    )


def test_an_amqp_connection_from_ipv6_is_parsed_alike():
    # given
    headers = created_headers(protocol=b"{0,9,1}", peer_host=b"{0,0,0,0,0,0,0,1}")

    # when
    event = parse_event("connection.created", headers)

    # then
    assert isinstance(event, ConnectionOpened)
    assert (event.protocol, event.peer_host) == ("AMQP 0-9-1", "0:0:0:0:0:0:0:1")
    assert AgentTransport.of_protocol(event.protocol) == "amqp"


def test_a_closed_event_carries_only_the_name_the_node_and_the_time_it_was_published():
    # given
    headers = {
        "name": b"127.0.0.1:51270 -> 127.0.0.1:15674",
        "node": b"rabbit@vm",
        "timestamp_in_ms": PUBLISHED_AT_MS,
    }

    # when
    event = parse_event("connection.closed", headers)

    # then
    assert event == ConnectionClosed(
        name="127.0.0.1:51270 -> 127.0.0.1:15674", node="rabbit@vm", closed_at=PUBLISHED_AT
    )


@pytest.mark.parametrize(
    "connected_at",
    [
        pytest.param(None, id="missing"),
        pytest.param(True, id="bool"),
        pytest.param(b"1795502668419", id="text"),
        pytest.param(10**20, id="beyond-any-date"),
    ],
)
def test_a_connect_time_that_is_not_usable_falls_back_to_the_publishing_time(connected_at):
    # when
    event = parse_event("connection.created", created_headers(connected_at=connected_at))

    # then
    assert isinstance(event, ConnectionOpened)
    assert event.connected_at == PUBLISHED_AT


def test_an_event_without_any_time_is_stamped_when_it_is_parsed():
    # given
    headers = created_headers(connected_at=None, timestamp_in_ms=None)
    before = datetime.now(UTC)

    # when
    opened = parse_event("connection.created", headers)
    closed = parse_event("connection.closed", {"name": b"c", "node": b"rabbit@vm"})

    # then
    assert isinstance(opened, ConnectionOpened)
    assert isinstance(closed, ConnectionClosed)
    assert before <= opened.connected_at <= datetime.now(UTC)
    assert before <= closed.closed_at <= datetime.now(UTC)


def test_missing_text_headers_become_empty_and_text_that_is_not_utf8_is_replaced():
    # given
    headers = {"name": b"conn-\xff", "connected_at": CONNECTED_AT_MS}

    # when
    event = parse_event("connection.created", headers)

    # then
    assert event == ConnectionOpened(
        name="conn-\ufffd",
        user="",
        vhost="",
        node="",
        peer_host="",
        protocol="",
        connected_at=CONNECTED_AT,
    )


@pytest.mark.parametrize(
    ("routing_key", "headers"),
    [
        pytest.param("connection.created", created_headers(name=None), id="created-without-name"),
        pytest.param("connection.created", created_headers(name=b""), id="created-empty-name"),
        pytest.param("connection.closed", {"node": b"rabbit@vm"}, id="closed-without-name"),
        pytest.param("channel.created", created_headers(), id="channel-event"),
        pytest.param("user.authentication.failure", {"name": b"x"}, id="auth-failure"),
    ],
)
def test_events_this_service_does_not_use_parse_to_none(routing_key, headers):
    assert parse_event(routing_key, headers) is None


# --- the stream -----------------------------------------------------------------------------


class FakeChannel:
    """What the stream asks of a pika channel, recorded; delivers to its consumer on demand."""

    def __init__(self) -> None:
        self.declared: list[tuple[str, dict[str, Any]]] = []
        self.bindings: list[tuple[str, str, str]] = []
        self.consumers: list[tuple[str, Any, bool]] = []

    def queue_declare(self, queue: str, **options: Any) -> Any:
        self.declared.append((queue, options))
        return SimpleNamespace(method=SimpleNamespace(queue="amq.gen-events"))

    def queue_bind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        self.bindings.append((queue, exchange, routing_key))

    def basic_consume(self, queue: str, callback: Any, auto_ack: bool) -> None:
        self.consumers.append((queue, callback, auto_ack))

    def deliver(self, routing_key: str, headers: dict[str, Any] | None) -> None:
        _, callback, _ = self.consumers[0]
        callback(
            self,
            SimpleNamespace(routing_key=routing_key),
            SimpleNamespace(headers=headers),
            b"",
        )


class FakeConnection:
    """A pika BlockingConnection whose broker delivers what the test scripts."""

    refuse_with: Exception | None = None
    instances: list["FakeConnection"] = []

    def __init__(self, parameters: Any) -> None:
        if FakeConnection.refuse_with is not None:
            raise FakeConnection.refuse_with
        self.parameters = parameters
        self.fake_channel = FakeChannel()
        self.scripted: list[tuple[str, dict[str, Any] | None]] = []
        self.fail_with: Exception | None = None
        self.is_open = True
        self.waits: list[float] = []
        FakeConnection.instances.append(self)

    def channel(self) -> FakeChannel:
        return self.fake_channel

    def process_data_events(self, *, time_limit: float) -> None:
        self.waits.append(time_limit)
        if self.fail_with is not None:
            raise self.fail_with
        for routing_key, headers in self.scripted:
            self.fake_channel.deliver(routing_key, headers)
        self.scripted = []

    def close(self) -> None:
        self.is_open = False


@pytest.fixture
def fake_pika(monkeypatch) -> type[FakeConnection]:
    FakeConnection.refuse_with = None
    FakeConnection.instances = []
    monkeypatch.setattr(events.pika, "BlockingConnection", FakeConnection)
    return FakeConnection


def open_stream() -> tuple[ConnectionEventStream, FakeConnection]:
    stream = ConnectionEventStream("amqp://observer:pw@broker.test:5672/%2F", connect_timeout=2)
    stream.open()
    return stream, FakeConnection.instances[-1]


def test_the_stream_binds_a_private_queue_to_both_connection_events(fake_pika):
    # when
    _, connection = open_stream()

    # then
    channel = connection.fake_channel
    assert channel.declared == [("", {"exclusive": True, "auto_delete": True})]
    assert channel.bindings == [
        ("amq.gen-events", EVENT_EXCHANGE, "connection.created"),
        ("amq.gen-events", EVENT_EXCHANGE, "connection.closed"),
    ]
    assert [(queue, auto_ack) for queue, _, auto_ack in channel.consumers] == [
        ("amq.gen-events", True)
    ]
    assert EVENT_EXCHANGE == "amq.rabbitmq.event"
    assert (connection.parameters.host, connection.parameters.virtual_host) == ("broker.test", "/")
    assert connection.parameters.socket_timeout == 2
    assert connection.parameters.blocked_connection_timeout == 2


def test_drain_returns_the_events_that_arrived_in_order_and_only_once(fake_pika):
    # given
    stream, connection = open_stream()
    connection.scripted = [
        ("connection.created", created_headers()),
        ("channel.created", created_headers()),
        ("connection.closed", {"name": b"old", "node": b"rabbit@vm", "timestamp_in_ms": 1}),
        ("connection.created", None),
    ]

    # when
    first = stream.drain(seconds=0.5)
    second = stream.drain(seconds=0.5)

    # then
    assert [type(event) for event in first] == [ConnectionOpened, ConnectionClosed]
    assert first[0].name == "127.0.0.1:51270 -> 127.0.0.1:15674"
    assert first[1].name == "old"
    assert second == []
    assert connection.waits == [0.5, 0.5]


def test_draining_a_stream_that_was_never_opened_is_broker_unavailable():
    with pytest.raises(BrokerUnavailable, match="not open"):
        ConnectionEventStream("amqp://guest:guest@127.0.0.1:9/%2F", connect_timeout=1).drain(
            seconds=0.1
        )


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(pika.exceptions.AMQPConnectionError("refused"), id="amqp-refused"),
        pytest.param(ConnectionRefusedError(111, "Connection refused"), id="socket-refused"),
    ],
)
def test_a_broker_that_refuses_the_stream_is_broker_unavailable(fake_pika, error):
    # given
    fake_pika.refuse_with = error
    stream = ConnectionEventStream("amqp://guest:guest@broker.test/%2F", connect_timeout=1)

    # when / then
    with pytest.raises(BrokerUnavailable, match="cannot consume the broker's event exchange"):
        stream.open()
    with pytest.raises(BrokerUnavailable, match="not open"):
        stream.drain(seconds=0.1)


def test_a_stream_that_breaks_off_is_broker_unavailable_and_closed(fake_pika):
    # given
    stream, connection = open_stream()
    connection.fail_with = pika.exceptions.StreamLostError("Transport indicated EOF")

    # when / then
    with pytest.raises(BrokerUnavailable, match="broke off"):
        stream.drain(seconds=0.1)
    assert connection.is_open is False
    with pytest.raises(BrokerUnavailable, match="not open"):
        stream.drain(seconds=0.1)


def test_close_closes_the_connection_once(fake_pika):
    # given
    stream, connection = open_stream()

    # when
    stream.close()
    stream.close()

    # then
    assert connection.is_open is False
