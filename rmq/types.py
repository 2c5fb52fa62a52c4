"""The broker's live side as plain values: connections, queues and a snapshot of both.

Pure data (no Django, no HTTP), so the merge and the status judgement can use them.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class BrokerConnection:
    """One client connection as the management API lists it."""

    name: str
    user: str
    vhost: str
    peer_host: str | None
    connected_at: datetime | None
    state: str | None
    recv_oct: int | None
    send_oct: int | None
    protocol: str | None
    node: str | None


@dataclass(frozen=True, slots=True)
class BrokerQueue:
    """One queue with its depth and consumer count, its state and the node it lives on.

    `state` is RabbitMQ's ("running", "idle", ..., "down" when the queue's node is down;
    None when not listed) and `node` the Erlang node name ("rabbit@host").
    """

    vhost: str
    name: str
    messages: int | None
    consumers: int
    state: str | None = None
    node: str | None = None

    @property
    def is_down(self) -> bool:
        """Whether the queue's node is down: it exists, but nothing is known of its depth."""
        return self.state == QUEUE_STATE_DOWN


# The state /api/queues lists for a classic queue whose node is down (RabbitMQ 3.10).
QUEUE_STATE_DOWN = "down"


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """All connections and all queues, read at (about) one moment."""

    connections: tuple[BrokerConnection, ...]
    queues: tuple[BrokerQueue, ...]
    taken_at: datetime = field(default_factory=lambda: datetime.now(tz=UTC))
    # The management node (host:port) that answered, None when not known.
    answered_by: str | None = None
