"""The RabbitMQ management API as tests fake it: mocked answers (`responses`), the JSON
items it lists, and the captured RabbitMQ 3.10 responses in tests/fixtures/rabbitmq/."""

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import responses
from django.conf import settings

from tests.kit.paths import ROOT

MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
CONNECTIONS_URL = f"{MANAGEMENT}/api/connections"
QUEUES_URL = f"{MANAGEMENT}/api/queues"
CONSUMERS_URL = f"{MANAGEMENT}/api/consumers"
CAPTURED = ROOT / "tests" / "fixtures" / "rabbitmq"
# Who is who in the captured responses: the owner's vhost, the offering, and the
# subscription users connected over AMQP and over Web STOMP (listed before its stats).
CAPTURED_OWNER = UUID("9a2b386ca3464aee9f313c0f20518f57")
CAPTURED_OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
CAPTURED_AMQP_SUBSCRIPTION = UUID("18b4ecbe541b46b38c9e129f3485911f")
CAPTURED_STOMP_SUBSCRIPTION = UUID("0233d0c94a9544c0bca9b1709dc3c24d")
# One snapshot: /api/connections, /api/queues and /api/consumers.
SNAPSHOT_CALLS = 3
CONNECTED_AT = datetime(2026, 11, 24, 6, 44, tzinfo=UTC)


def mock_broker_snapshot(
    broker: responses.RequestsMock,
    *,
    base: str = MANAGEMENT,
    connections: list[dict[str, Any]] | None = None,
    queues: list[dict[str, Any]] | None = None,
) -> None:
    """Answer the snapshot's three listings (see mock_queue_listings for the queues)."""
    broker.add(responses.GET, f"{base}/api/connections", json=connections or [])
    mock_queue_listings(broker, base=base, queues=queues)


def mock_queue_listings(
    broker: responses.RequestsMock, *, base: str = MANAGEMENT, queues: list[dict[str, Any]] | None
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


def management_url(resource: str, *, base: str = MANAGEMENT) -> re.Pattern[str]:
    """Any path under /api/<resource>/ of the management API."""
    return re.compile(rf"{re.escape(base)}/api/{resource}/.+")


def accept_provisioning(broker: responses.RequestsMock) -> None:
    """Accept every PUT that provisions a subscription: vhost, limits, permissions, user,
    queue."""
    for resource in ("vhosts", "vhost-limits", "permissions", "users", "queues"):
        broker.add(responses.PUT, management_url(resource), status=201)


def answer_vhost_lookups(
    broker: responses.RequestsMock,
    *,
    base: str = MANAGEMENT,
    tags: tuple[str, ...] = ("agentstats",),
) -> None:
    """Answer the one-vhost lookup (rmq.housekeeping.read_vhost_tags): every vhost asked for
    exists, with `tags`."""

    def callback(request: Any) -> tuple[int, dict, str]:
        pattern = parse_qs(urlsplit(request.url).query)["name"][0]
        name = pattern.removeprefix("^").removesuffix("$").replace("\\", "")
        body = {"items": [{"name": name, "tags": list(tags)}]}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    broker.add_callback(responses.GET, f"{base}/api/vhosts", callback=callback)


def accept_teardown(broker: responses.RequestsMock, *, base: str = MANAGEMENT) -> None:
    """Accept every deletion (users, queues, vhosts) and answer vhost lookups as tagged."""
    for resource in ("users", "queues", "vhosts"):
        broker.add(responses.DELETE, management_url(resource, base=base), status=204)
    answer_vhost_lookups(broker, base=base)


def slow_answer(delay: float, body: str = "[]") -> Callable[[Any], tuple[int, dict, str]]:
    """A `responses` callback: a broker that takes `delay` seconds to answer `body`."""

    def callback(request: Any) -> tuple[int, dict, str]:
        time.sleep(delay)
        return (200, {"Content-Type": "application/json"}, body)

    return callback


def broker_queue_of(queue: Any, *, messages: int = 0, consumers: int = 1) -> dict[str, Any]:
    """A database queue as the statistics would list it (for mock_queue_listings)."""
    return {
        "name": queue.queue_name,
        "vhost": queue.vhost,
        "messages": messages,
        "consumers": consumers,
    }


def broker_connection_of(
    subscription: Any,
    *,
    peer_host: str = "10.0.0.1",
    connected_at: datetime = CONNECTED_AT,
    port: int = 41000,
    protocol: str = "Web STOMP 1.2",
    node: str = "rabbit@vm",
) -> dict[str, Any]:
    """A running connection logged in as the subscription's user, in its owner's vhost,
    as /api/connections lists it."""
    return {
        "name": f"{peer_host}:{port} -> 127.0.0.1:15674",
        "user": subscription.uuid.hex,
        "vhost": subscription.user.uuid.hex,
        "peer_host": peer_host,
        "connected_at": int(connected_at.timestamp() * 1000),
        "state": "running",
        "recv_oct": 120,
        "send_oct": 340,
        "protocol": protocol,
        "node": node,
    }


def captured(name: str) -> Any:
    """A fresh copy of a captured RabbitMQ 3.10 response (tests/fixtures/rabbitmq/)."""
    return json.loads((CAPTURED / name).read_text())


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
