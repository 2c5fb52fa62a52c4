"""RabbitMQ's own connection events (the rabbitmq_event_exchange plugin), parsed.

The broker publishes `connection.created` and `connection.closed` to the topic exchange
`amq.rabbitmq.event`, with the event's properties as message headers written in Erlang
term syntax ('{127,0,0,1}', "{'Web STOMP',\\"1.2\\"}"). A closed event carries only the
connection's name, node and time, so consumers match it to the created one by name.

On a cluster the plugin (enabled on every node) publishes each node's events to the
exchange, which is cluster-wide: a queue bound on any one node receives the events of
connections on every node. The stream therefore connects to one node, the first of the
configured list that answers, and a caller that loses it opens a new stream, which lands
on another node while the lost one refuses (and is tried last while remembered down).
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from rmq.exceptions import BrokerUnavailable
from rmq.nodes import PROCESS_NODE_MEMORY, NodeMemory, node_label

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
    """A private queue bound to the event exchange on one node of `amqp_urls`; binding
    first means nothing that happens while the caller reconciles is lost."""

    def __init__(
        self,
        amqp_urls: str | Sequence[str],
        *,
        connect_timeout: float,
        node_down_seconds: float = 10.0,
        node_memory: NodeMemory | None = None,
    ) -> None:
        urls = (amqp_urls,) if isinstance(amqp_urls, str) else tuple(amqp_urls)
        if not urls:
            raise ValueError("an event stream needs at least one AMQP URL")
        self.nodes = tuple(node_label(url) for url in urls)
        self._parameters_of = {
            label: _parameters(url, connect_timeout=connect_timeout)
            for label, url in zip(self.nodes, urls, strict=True)
        }
        self.node_down_seconds = node_down_seconds
        self.node_memory = node_memory or PROCESS_NODE_MEMORY
        # The node (host:port) the open stream consumes on; None while closed.
        self.connected_node: str | None = None
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._pending: list[ConnectionEvent] = []

    @property
    def parameters(self) -> pika.URLParameters:
        """The first node's connection parameters."""
        return self._parameters_of[self.nodes[0]]

    def open(self) -> None:
        """Connect to the first node that answers (nodes remembered down last), declare an
        exclusive queue and bind it to the connection events."""
        # Stable sort: configured order, those that failed lately at the end.
        order = sorted(self.nodes, key=self.node_memory.is_down)
        for position, label in enumerate(order, start=1):
            try:
                self._open_on(label)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.close()
                self.node_memory.mark_down(label, seconds=self.node_down_seconds)
                logger.warning("event stream cannot use node %s: %r", label, exc)
                if position == len(order):
                    raise BrokerUnavailable(
                        f"cannot consume the broker's event exchange: {exc!r}"
                    ) from exc
                continue
            self.node_memory.mark_up(label)
            self.connected_node = label
            return

    def _open_on(self, label: str) -> None:
        self._connection = pika.BlockingConnection(self._parameters_of[label])
        self._channel = self._connection.channel()
        queue = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        name = queue.method.queue
        for key in ROUTING_KEYS:
            self._channel.queue_bind(name, EVENT_EXCHANGE, routing_key=key)
        self._channel.basic_consume(name, self._on_message, auto_ack=True)

    def drain(self, *, seconds: float) -> list[ConnectionEvent]:
        """Wait up to `seconds` for events and return those that arrived, in order."""
        if self._connection is None:
            raise BrokerUnavailable("the event stream is not open")
        try:
            self._connection.process_data_events(time_limit=seconds)
        except (pika.exceptions.AMQPError, OSError) as exc:
            if self.connected_node is not None:
                # The next stream tries the other nodes first.
                self.node_memory.mark_down(self.connected_node, seconds=self.node_down_seconds)
            self.close()
            raise BrokerUnavailable(f"the broker's event stream broke off: {exc!r}") from exc
        events, self._pending = self._pending, []
        return events

    def close(self) -> None:
        """Close the connection (its exclusive queue goes with it)."""
        connection, self._connection = self._connection, None
        self.connected_node = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                logger.info("event stream connection was already gone")

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        event = parse_event(method.routing_key, properties.headers or {})
        if event is not None:
            self._pending.append(event)


def _parameters(url: str, *, connect_timeout: float) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    # One attempt, and the whole connection setup (TCP, TLS, AMQP handshake) bounded by the
    # connect timeout: pika's default stack_timeout (15 s) per node would let opening the
    # stream outlast the observer's lease on a cluster with a hung node.
    parameters.connection_attempts = 1
    parameters.stack_timeout = connect_timeout
    parameters.socket_timeout = connect_timeout
    parameters.blocked_connection_timeout = connect_timeout
    parameters.heartbeat = 30
    return parameters


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
