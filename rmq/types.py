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
    """One queue with its depth and consumer count."""

    vhost: str
    name: str
    messages: int | None
    consumers: int


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """All connections and all queues, read at (about) one moment."""

    connections: tuple[BrokerConnection, ...]
    queues: tuple[BrokerQueue, ...]
    taken_at: datetime = field(default_factory=lambda: datetime.now(tz=UTC))
