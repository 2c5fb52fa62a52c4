"""An event consumer's side of a mocked management-API snapshot (see tests/broker_mocks.py)."""

from typing import Any

# 2026-11-24T06:44:28.403Z, as the management API writes connected_at (epoch ms).
CONNECTED_AT_MS = 1795502668403


def consumer_queue(consumer: Any, *, messages: int = 0, consumers: int = 0) -> dict[str, Any]:
    """The consumer's queue as /api/queues (with consumers from /api/consumers) lists it."""
    return {
        "name": consumer.queue_name,
        "vhost": consumer.vhost,
        "messages": messages,
        "consumers": consumers,
    }


def consumer_login(consumer: Any, *, index: int = 0, peer_host: str = "10.0.0.9") -> dict[str, Any]:
    """A Web STOMP connection logged in as the consumer's broker user in its owner's vhost."""
    return {
        "name": f"{peer_host}:{41000 + index} -> 127.0.0.1:15674",
        "user": consumer.rmq_username,
        "vhost": consumer.vhost,
        "peer_host": peer_host,
        "connected_at": CONNECTED_AT_MS,
        "state": "running",
        "recv_oct": 100,
        "send_oct": 200,
        "protocol": "Web STOMP 1.2",
        "node": "rabbit@localhost",
    }
