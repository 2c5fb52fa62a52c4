"""The connection report: database rows merged with one broker snapshot.

Pure: no database, no broker, no clock. Given the same rows and snapshot it gives the
same report, so every rule here is unit-tested with plain values.
"""

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from marketplace.names import DeliveryBlockedReason, ObservableObjectType, QueueKind
from rmq.naming import is_subscription_queue_name, parse_queue_name, parse_queue_object_type
from rmq.types import QUEUE_STATE_DOWN, BrokerConnection, BrokerQueue, BrokerSnapshot

# Connection states in which the client can no longer receive deliveries.
CLOSED_CONNECTION_STATES = frozenset({"closing", "closed"})


@dataclass(frozen=True, slots=True)
class ServiceRow:
    uuid: UUID
    name: str
    state: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    uuid: UUID
    created: datetime
    vhost: str
    object_types: tuple[str, ...]
    queue_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsumerRow:
    """An agent's unified event consumer and the database facts its delivery depends on.

    The auth_* and authorized_via values are None when not recorded.
    """

    uuid: UUID
    vhost: str
    rmq_username: str
    queue_name: str
    object_types: tuple[str, ...]
    auth_kind: str | None
    auth_token_prefix: str | None
    auth_token_name: str | None
    authorized_via: str | None
    is_owner_active: bool
    has_owner_token: bool
    has_owner_role: bool


@dataclass(frozen=True, slots=True)
class AgentRow:
    uuid: UUID
    name: str
    offering_uuid: UUID
    offering_name: str
    version: str
    last_restarted: datetime
    user_uuid: UUID | None
    user_username: str | None
    user_full_name: str | None
    user_is_staff: bool | None
    services: tuple[ServiceRow, ...]
    subscriptions: tuple[SubscriptionRow, ...]
    # The user_* fields are the consumer's owner when there is a consumer.
    consumer: ConsumerRow | None = None


@dataclass(frozen=True, slots=True)
class RmqConnectionStatus:
    connected: bool
    source_ip: str | None = None
    connected_at: datetime | None = None
    state: str | None = None
    recv_oct: int | None = None
    send_oct: int | None = None
    node: str | None = None
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    uuid: UUID
    created: datetime
    observable_objects: tuple[dict[str, str], ...]
    rmq_connection: RmqConnectionStatus


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A queue as reported. `messages` is None when its node is down (it exists, its
    depth is unknown); `state` and `node` are the broker's, None when it lacks the queue."""

    name: str
    vhost: str
    messages: int | None
    consumers: int
    object_type: str | None
    kind: QueueKind
    exists_on_broker: bool
    state: str | None = None
    node: str | None = None

    @property
    def is_on_down_node(self) -> bool:
        return self.state == QUEUE_STATE_DOWN


@dataclass(frozen=True, slots=True)
class AgentStatus:
    row: AgentRow
    is_connected: bool
    event_subscriptions: tuple[SubscriptionStatus, ...]
    queues: tuple[QueueStatus, ...]
    # The live connection logged in as the agent's event consumer (None: no consumer).
    consumer_connection: RmqConnectionStatus | None = None
    delivery_blocked_reason: DeliveryBlockedReason | None = None

    @property
    def live_connections(self) -> tuple[RmqConnectionStatus, ...]:
        """The live connections of its subscriptions, then of its event consumer."""
        statuses = [sub.rmq_connection for sub in self.event_subscriptions]
        if self.consumer_connection is not None:
            statuses.append(self.consumer_connection)
        return tuple(status for status in statuses if status.connected)


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    total_agents: int
    connected_agents: int
    disconnected_agents: int
    total_queued_messages: int
    total_subscriptions: int
    connected_subscriptions: int
    total_queues: int
    queues_missing_on_broker: int
    queues_without_consumers: int
    queues_on_down_nodes: int = 0
    snapshot_taken_at: datetime | None = None
    broker_node: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    agents: tuple[AgentStatus, ...]
    summary: ConnectionSummary


def build_connection_report(
    rows: Sequence[AgentRow], snapshot: BrokerSnapshot, *, connected: bool | None = None
) -> ConnectionReport:
    """Merge agents with the broker's connections and queues; optionally keep one side."""
    connections = _index_connections(snapshot.connections)
    queues = _index_queues(snapshot.queues)
    agents = tuple(_build_agent_status(row, connections, queues) for row in rows)
    if connected is not None:
        agents = tuple(agent for agent in agents if agent.is_connected is connected)
    summary = dataclasses.replace(
        summarize_agents(agents),
        snapshot_taken_at=snapshot.taken_at,
        broker_node=snapshot.answered_by,
    )
    return ConnectionReport(agents=agents, summary=summary)


def summarize_agents(agents: Sequence[AgentStatus]) -> ConnectionSummary:
    """Count agents, subscriptions and queues; each broker queue counts once. A queue on a
    down node adds no messages (unknown) and counts as on a down node, not as unconsumed."""
    unique_queues = {(queue.vhost, queue.name): queue for agent in agents for queue in agent.queues}
    subscriptions = [sub for agent in agents for sub in agent.event_subscriptions]
    connected_agents = sum(1 for agent in agents if agent.is_connected)
    return ConnectionSummary(
        total_agents=len(agents),
        connected_agents=connected_agents,
        disconnected_agents=len(agents) - connected_agents,
        total_queued_messages=sum(queue.messages or 0 for queue in unique_queues.values()),
        total_subscriptions=len(subscriptions),
        connected_subscriptions=sum(1 for sub in subscriptions if sub.rmq_connection.connected),
        total_queues=len(unique_queues),
        queues_missing_on_broker=sum(
            1 for queue in unique_queues.values() if not queue.exists_on_broker
        ),
        queues_without_consumers=sum(
            1
            for queue in unique_queues.values()
            if queue.exists_on_broker and not queue.is_on_down_node and not queue.consumers
        ),
        queues_on_down_nodes=sum(1 for queue in unique_queues.values() if queue.is_on_down_node),
    )


def select_connection(candidates: Iterable[BrokerConnection]) -> BrokerConnection | None:
    """Pick the live connection to report: running first, then the latest connected_at."""
    live = [conn for conn in candidates if conn.state not in CLOSED_CONNECTION_STATES]
    if not live:
        return None
    return max(
        live,
        key=lambda conn: (
            conn.state == "running",
            conn.connected_at.timestamp() if conn.connected_at else float("-inf"),
        ),
    )


def _index_connections(
    connections: Iterable[BrokerConnection],
) -> dict[tuple[str, str], list[BrokerConnection]]:
    index: dict[tuple[str, str], list[BrokerConnection]] = {}
    for connection in connections:
        index.setdefault((connection.vhost, connection.user), []).append(connection)
    return index


@dataclass(frozen=True, slots=True)
class _QueueIndex:
    by_name: dict[tuple[str, str], BrokerQueue]
    # Broker queues named after a subscription: (vhost, subscription hex, offering hex).
    by_subscription: dict[tuple[str, str, str], list[str]]
    # Object type of every subscription queue's name on the broker (parsed once).
    object_types: dict[str, str]


def _index_queues(queues: Iterable[BrokerQueue]) -> _QueueIndex:
    by_name: dict[tuple[str, str], BrokerQueue] = {}
    by_subscription: dict[tuple[str, str, str], list[str]] = {}
    object_types: dict[str, str] = {}
    for queue in queues:
        by_name[(queue.vhost, queue.name)] = queue
        parsed = parse_queue_name(queue.name)
        if parsed is not None:
            key = (queue.vhost, parsed.subscription_hex, parsed.offering_hex)
            by_subscription.setdefault(key, []).append(queue.name)
            object_types[queue.name] = parsed.object_type
    return _QueueIndex(by_name=by_name, by_subscription=by_subscription, object_types=object_types)


def _build_agent_status(
    row: AgentRow,
    connections: dict[tuple[str, str], list[BrokerConnection]],
    queues: _QueueIndex,
) -> AgentStatus:
    # A subscription's broker user (and queue-name prefix) is its uuid hex, within its vhost.
    keys = [(sub.vhost, sub.uuid.hex) for sub in row.subscriptions]
    subscriptions = tuple(
        _build_subscription_status(sub, connections.get(key, ()))
        for sub, key in zip(row.subscriptions, keys, strict=True)
    )
    legacy_queues = _collect_agent_queues(
        row.subscriptions, keys, queues, offering_hex=row.offering_uuid.hex
    )
    is_connected = any(sub.rmq_connection.connected for sub in subscriptions)
    consumer = row.consumer
    if consumer is None:
        return AgentStatus(
            row=row,
            is_connected=is_connected,
            event_subscriptions=subscriptions,
            queues=tuple(legacy_queues),
        )
    connection = _describe_connection(connections.get((consumer.vhost, consumer.rmq_username), ()))
    queue = _build_consumer_queue_status(consumer, queues)
    return AgentStatus(
        row=row,
        # Either proves the agent is there: a consumer on its queue, that delivery works;
        # a connection as its broker user, that it is up before (or without) subscribing.
        is_connected=is_connected or connection.connected or bool(queue.consumers),
        event_subscriptions=subscriptions,
        queues=(queue, *legacy_queues),
        consumer_connection=connection,
        delivery_blocked_reason=judge_consumer_delivery(consumer, queue),
    )


_KNOWN_OBJECT_TYPES = frozenset(ObservableObjectType.values())


def judge_consumer_delivery(
    consumer: ConsumerRow, queue: QueueStatus
) -> DeliveryBlockedReason | None:
    """Why no event can reach the consumer's queue (the first reason that applies), or
    None when delivery works."""
    if not consumer.is_owner_active:
        return DeliveryBlockedReason.OWNER_DEACTIVATED
    if not queue.exists_on_broker:
        return DeliveryBlockedReason.QUEUE_NOT_PROVISIONED
    if queue.is_on_down_node:
        # A classic queue lives on one node: while that node is down nothing is delivered
        # into it, whichever node the agent is connected to.
        return DeliveryBlockedReason.QUEUE_NODE_DOWN
    if not consumer.has_owner_token:
        # The broker password is the owner's API token: without one the agent cannot log in.
        return DeliveryBlockedReason.BROKER_CREDENTIAL_MISSING
    if not consumer.has_owner_role:
        return DeliveryBlockedReason.OWNER_HAS_NO_ROLE
    if consumer.object_types and _KNOWN_OBJECT_TYPES.isdisjoint(consumer.object_types):
        return DeliveryBlockedReason.NO_OBJECT_TYPES
    return None


_NOT_CONNECTED = RmqConnectionStatus(connected=False)


def _describe_connection(candidates: Sequence[BrokerConnection]) -> RmqConnectionStatus:
    chosen = select_connection(candidates) if candidates else None
    if chosen is None:
        return _NOT_CONNECTED
    return RmqConnectionStatus(
        connected=True,
        source_ip=chosen.peer_host,
        connected_at=chosen.connected_at,
        state=chosen.state,
        recv_oct=chosen.recv_oct,
        send_oct=chosen.send_oct,
        node=chosen.node,
        protocol=chosen.protocol,
    )


def _build_subscription_status(
    sub: SubscriptionRow, candidates: Sequence[BrokerConnection]
) -> SubscriptionStatus:
    return SubscriptionStatus(
        uuid=sub.uuid,
        created=sub.created,
        observable_objects=tuple({"object_type": kind} for kind in sub.object_types),
        rmq_connection=_describe_connection(candidates),
    )


def _build_consumer_queue_status(consumer: ConsumerRow, queues: _QueueIndex) -> QueueStatus:
    broker_queue = queues.by_name.get((consumer.vhost, consumer.queue_name))
    return _build_queue_status(
        consumer.queue_name,
        vhost=consumer.vhost,
        broker_queue=broker_queue,
        object_type=None,
        kind=QueueKind.CONSUMER,
    )


def _build_queue_status(
    name: str,
    *,
    vhost: str,
    broker_queue: BrokerQueue | None,
    object_type: str | None,
    kind: QueueKind,
) -> QueueStatus:
    """A queue as the report lists it: 0 messages and 0 consumers when the broker lacks it,
    unknown (None) messages when its node is down."""
    if broker_queue is None:
        messages: int | None = 0
    elif broker_queue.is_down:
        messages = None
    else:
        messages = broker_queue.messages or 0
    return QueueStatus(
        name=name,
        vhost=vhost,
        messages=messages,
        consumers=broker_queue.consumers if broker_queue else 0,
        object_type=object_type,
        kind=kind,
        exists_on_broker=broker_queue is not None,
        state=broker_queue.state if broker_queue else None,
        node=broker_queue.node if broker_queue else None,
    )


def _collect_agent_queues(
    subscriptions: Sequence[SubscriptionRow],
    keys: Sequence[tuple[str, str]],
    queues: _QueueIndex,
    *,
    offering_hex: str,
) -> list[QueueStatus]:
    """The agent's queues: its rows' queues (flagged when missing) and any other broker
    queue named after one of its subscriptions for the agent's own offering.

    A broker queue naming another offering is not the agent's: whoever declared it, it
    would otherwise show in this agent's rows and in the summary.
    """
    result: dict[tuple[str, str], QueueStatus] = {}
    for sub, (vhost, subscription_hex) in zip(subscriptions, keys, strict=True):
        names = set(sub.queue_names)
        names.update(queues.by_subscription.get((vhost, subscription_hex, offering_hex), ()))
        for name in sorted(names):
            broker_queue = queues.by_name.get((sub.vhost, name))
            object_type = queues.object_types.get(name) if broker_queue else None
            result[(sub.vhost, name)] = _build_queue_status(
                name,
                vhost=sub.vhost,
                broker_queue=broker_queue,
                object_type=object_type or parse_queue_object_type(name),
                kind=QueueKind.LEGACY if is_subscription_queue_name(name) else QueueKind.UNKNOWN,
            )
    return list(result.values())
