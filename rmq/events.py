"""RabbitMQ's own connection events (the rabbitmq_event_exchange plugin), parsed.

The broker publishes `connection.created` and `connection.closed` to the topic exchange
`amq.rabbitmq.event`, with the event's properties as message headers written in Erlang
term syntax ('{127,0,0,1}', "{'Web STOMP',\\"1.2\\"}"). A closed event carries only the
connection's name, node and time, so consumers match it to the created one by name.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from rmq.exceptions import BrokerUnavailable

logger = logging.getLogger(__name__)

EVENT_EXCHANGE = "amq.rabbitmq.event"
ROUTING_KEYS = ("connection.created", "connection.closed")


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    name: str
    user: str
    vhost: str
    node: str
    peer_host: str
    protocol: str
    connected_at: datetime


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    name: str
    node: str
    closed_at: datetime


ConnectionEvent = ConnectionOpened | ConnectionClosed


def parse_event(routing_key: str, headers: Mapping[str, Any]) -> ConnectionEvent | None:
    """Turn one event message into a value; None for events this service does not use."""
    values = {key: _text(value) for key, value in headers.items()}
    name = values.get("name")
    if not name:
        return None
    moment = _time_from_ms(headers.get("timestamp_in_ms"))
    if routing_key == "connection.created":
        return ConnectionOpened(
            name=name,
            user=values.get("user", ""),
            vhost=values.get("vhost", ""),
            node=values.get("node", ""),
            peer_host=parse_erlang_address(values.get("peer_host", "")),
            protocol=parse_erlang_protocol(values.get("protocol", "")),
            connected_at=_time_from_ms(headers.get("connected_at")) or moment or _now(),
        )
    if routing_key == "connection.closed":
        return ConnectionClosed(name=name, node=values.get("node", ""), closed_at=moment or _now())
    return None


def parse_erlang_address(value: str) -> str:
    """'{127,0,0,1}' -> '127.0.0.1'; an 8-part tuple -> an IPv6 address; else as given."""
    parts = re.fullmatch(r"\{([\d,]+)\}", value.strip())
    if not parts:
        return value
    numbers = [int(part) for part in parts.group(1).split(",")]
    if len(numbers) == 4:
        return ".".join(str(number) for number in numbers)
    if len(numbers) == 8:
        return ":".join(f"{number:x}" for number in numbers)
    return value


def parse_erlang_protocol(value: str) -> str:
    """ "{'Web STOMP',\\"1.2\\"}" -> 'Web STOMP 1.2'; '{0,9,1}' -> 'AMQP 0-9-1'."""
    named = re.fullmatch(r"\{'([^']+)',\"([^\"]+)\"\}", value.strip())
    if named:
        return f"{named.group(1)} {named.group(2)}"
    numbered = re.fullmatch(r"\{(\d+),(\d+),(\d+)\}", value.strip())
    if numbered:
        return "AMQP " + "-".join(numbered.groups())
    return value


class ConnectionEventStream:
    """A private queue bound to the event exchange; binding first means nothing that
    happens while the caller reconciles is lost."""

    def __init__(self, amqp_url: str, *, connect_timeout: float) -> None:
        self.parameters = pika.URLParameters(amqp_url)
        self.parameters.socket_timeout = connect_timeout
        self.parameters.blocked_connection_timeout = connect_timeout
        self.parameters.heartbeat = 30
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._pending: list[ConnectionEvent] = []

    def open(self) -> None:
        """Connect, declare an exclusive queue and bind it to the connection events."""
        try:
            self._connection = pika.BlockingConnection(self.parameters)
            self._channel = self._connection.channel()
            queue = self._channel.queue_declare("", exclusive=True, auto_delete=True)
            name = queue.method.queue
            for key in ROUTING_KEYS:
                self._channel.queue_bind(name, EVENT_EXCHANGE, routing_key=key)
            self._channel.basic_consume(name, self._on_message, auto_ack=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise BrokerUnavailable(f"cannot consume the broker's event exchange: {exc!r}") from exc

    def drain(self, *, seconds: float) -> list[ConnectionEvent]:
        """Wait up to `seconds` for events and return those that arrived, in order."""
        if self._connection is None:
            raise BrokerUnavailable("the event stream is not open")
        try:
            self._connection.process_data_events(time_limit=seconds)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise BrokerUnavailable(f"the broker's event stream broke off: {exc!r}") from exc
        events, self._pending = self._pending, []
        return events

    def close(self) -> None:
        """Close the connection (its exclusive queue goes with it)."""
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                logger.info("event stream connection was already gone")

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        event = parse_event(method.routing_key, properties.headers or {})
        if event is not None:
            self._pending.append(event)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _time_from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _now() -> datetime:
    return datetime.now(tz=UTC)
