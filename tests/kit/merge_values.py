"""Hand-built inputs of the pure merge (marketplace.stats.merge): agent rows, broker
connections and queues, a snapshot, and the statuses the merge makes of them."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from marketplace.stats.merge import (
    AgentRow,
    AgentStatus,
    QueueStatus,
    RmqConnectionStatus,
    ServiceRow,
    SubscriptionRow,
    SubscriptionStatus,
)
from rmq.naming import parse_queue_object_type
from rmq.types import BrokerConnection, BrokerQueue, BrokerSnapshot

# The owner vhost and offering of the captured RabbitMQ 3.10 responses.
VHOST = "9a2b386ca3464aee9f313c0f20518f57"
OTHER_VHOST = "5c0f1e9d2b7a4c3e8f6a1b2c3d4e5f60"
OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
T0 = datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC)


def make_queue_name(sub: UUID, object_type: str, *, offering: UUID = OFFERING) -> str:
    return f"subscription_{sub.hex}_offering_{offering.hex}_{object_type}"


def make_subscription_row(
    *,
    uuid: UUID | None = None,
    vhost: str = VHOST,
    object_types: tuple[str, ...] = ("order",),
    queue_types: tuple[str, ...] = (),
) -> SubscriptionRow:
    sub_uuid = uuid or uuid4()
    return SubscriptionRow(
        uuid=sub_uuid,
        created=T0,
        vhost=vhost,
        object_types=object_types,
        queue_names=tuple(make_queue_name(sub_uuid, kind) for kind in queue_types),
    )


def make_agent_row(*subscriptions: SubscriptionRow, name: str = "agent") -> AgentRow:
    return AgentRow(
        uuid=uuid4(),
        name=name,
        offering_uuid=OFFERING,
        offering_name="HPC",
        version="1.0.0",
        last_restarted=T0,
        user_uuid=None,
        user_username=None,
        user_full_name=None,
        user_is_staff=None,
        services=(ServiceRow(uuid=uuid4(), name="orders", state="ACTIVE", modified=T0),),
        subscriptions=subscriptions,
    )


def make_connection(
    user: str,
    *,
    vhost: str = VHOST,
    state: str | None = "running",
    connected_at: datetime | None = T0,
    peer_host: str = "127.0.0.1",
    port: int = 38832,
) -> BrokerConnection:
    # Shaped like the captured AMQP connection of a subscription user.
    return BrokerConnection(
        name=f"{peer_host}:{port} -> 127.0.0.1:5672",
        user=user,
        vhost=vhost,
        peer_host=peer_host,
        connected_at=connected_at,
        state=state,
        recv_oct=477 if state else None,
        send_oct=537 if state else None,
        protocol="AMQP 0-9-1",
        node="rabbit@vm",
    )


def make_broker_queue(
    name: str, *, vhost: str = VHOST, messages: int | None = 0, consumers: int = 1
) -> BrokerQueue:
    return BrokerQueue(vhost=vhost, name=name, messages=messages, consumers=consumers)


def make_snapshot(
    connections: tuple[BrokerConnection, ...] = (), queues: tuple[BrokerQueue, ...] = ()
) -> BrokerSnapshot:
    return BrokerSnapshot(connections=connections, queues=queues)


def make_queue_status(
    name: str, *, messages: int = 0, consumers: int = 0, exists_on_broker: bool = True
) -> QueueStatus:
    return QueueStatus(
        name=name,
        vhost=VHOST,
        messages=messages,
        consumers=consumers,
        object_type=parse_queue_object_type(name),
        kind="legacy",
        exists_on_broker=exists_on_broker,
    )


def make_agent_status(
    *, is_connected: bool, subscriptions_connected: tuple[bool, ...], queues: tuple = ()
) -> AgentStatus:
    return AgentStatus(
        row=make_agent_row(),
        is_connected=is_connected,
        event_subscriptions=tuple(
            SubscriptionStatus(
                uuid=uuid4(),
                created=T0,
                observable_objects=({"object_type": "order"},),
                rmq_connection=RmqConnectionStatus(connected=connected),
            )
            for connected in subscriptions_connected
        ),
        queues=queues,
    )
