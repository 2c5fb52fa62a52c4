"""The management API's snapshot calls, mocked with `responses` as RabbitMQ answers them."""

from typing import Any

import responses

# One snapshot: /api/connections, /api/queues and /api/consumers.
SNAPSHOT_CALLS = 3


def mock_broker_snapshot(
    broker: responses.RequestsMock,
    *,
    base: str,
    connections: list[dict[str, Any]] | None = None,
    queues: list[dict[str, Any]] | None = None,
) -> None:
    """Answer the snapshot's three listings (see mock_queue_listings for the queues)."""
    broker.add(responses.GET, f"{base}/api/connections", json=connections or [])
    mock_queue_listings(broker, base=base, queues=queues)


def mock_queue_listings(
    broker: responses.RequestsMock, *, base: str, queues: list[dict[str, Any]] | None
) -> None:
    """Answer /api/queues and /api/consumers.

    A queue may carry a `consumers` count, as the statistics would list it: /api/consumers
    lists that many consumers of it, and /api/queues leaves the field out, as it does with
    `disable_stats=true`.
    """
    queues = queues or []
    listed = [
        {key: value for key, value in queue.items() if key != "consumers"} for queue in queues
    ]
    consumers = [
        {"queue": {"name": queue["name"], "vhost": queue["vhost"]}}
        for queue in queues
        for _ in range(queue.get("consumers") or 0)
    ]
    broker.add(responses.GET, f"{base}/api/queues", json=listed)
    broker.add(responses.GET, f"{base}/api/consumers", json=consumers)


def broker_queue_of(queue: Any, *, messages: int, consumers: int) -> dict[str, Any]:
    """A database queue as the statistics would list it (for mock_queue_listings)."""
    return {
        "name": queue.queue_name,
        "vhost": queue.vhost,
        "messages": messages,
        "consumers": consumers,
    }
