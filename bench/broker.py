"""The broker side of the synthetic fleet: vhosts, users, queues, messages, connections.

Everything created here carries the tag `agentstats-bench`, so cleanup finds it again
even after a crashed run; other tests share this broker. Bulk creation goes through
one definitions import per chunk (seconds for thousands of users and queues, where one
PUT each would take minutes); messages and client connections use AMQP.
"""

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pika
import requests

from bench.fleet import BrokerSubscription
from rmq.naming import NOTHING_PATTERN, build_queues_read_pattern
from rmq.snapshot import QUEUE_PARAMS

logger = logging.getLogger(__name__)

BENCH_TAG = "agentstats-bench"
DEFINITIONS_CHUNK = 4000
DELETE_CHUNK = 2000
DELETE_THREADS = 4
CLEANUP_TIMEOUT = 600.0
AMQP_PORT = 5672


@dataclass
class ManagementAPI:
    """The management API as the harness uses it (not the app's client: no retries)."""

    base_url: str
    user: str
    password: str
    timeout: float = 120.0
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session.auth = (self.user, self.password)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    def get(self, path: str, **params: str) -> Any:
        response = self.session.get(
            f"{self.base_url}/api/{path}", params=params, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Any = None) -> None:
        response = self.session.request(
            method, f"{self.base_url}/api/{path}", json=body, timeout=self.timeout
        )
        if response.status_code != 404:
            response.raise_for_status()


def add_broker_fleet(
    api: ManagementAPI, *, vhosts: Sequence[str], subscriptions: Sequence[BrokerSubscription]
) -> None:
    """Create vhosts (guest may use them), subscription users with queue-only permissions,
    and each subscription's durable queue, as the app provisions them."""
    if vhosts:
        api.send(
            "POST",
            "definitions",
            {
                "vhosts": [
                    {"name": vhost, "description": BENCH_TAG, "tags": [BENCH_TAG]}
                    for vhost in vhosts
                ],
                "permissions": [
                    {
                        "user": api.user,
                        "vhost": vhost,
                        "configure": ".*",
                        "write": ".*",
                        "read": ".*",
                    }
                    for vhost in vhosts
                ],
            },
        )
    for start in range(0, len(subscriptions), DEFINITIONS_CHUNK):
        chunk = subscriptions[start : start + DEFINITIONS_CHUNK]
        api.send("POST", "definitions", _subscription_definitions(chunk))


def _subscription_definitions(chunk: Iterable[BrokerSubscription]) -> dict[str, Any]:
    users: dict[str, dict[str, Any]] = {}
    readable: dict[tuple[str, str], list[str]] = {}
    queues: list[dict[str, Any]] = []
    for sub in chunk:
        if sub.username not in users:
            users[sub.username] = {
                "name": sub.username,
                "password": sub.password,
                "tags": BENCH_TAG,
            }
        readable.setdefault((sub.vhost, sub.username), []).append(sub.queue_name)
        queues.append(
            {
                "name": sub.queue_name,
                "vhost": sub.vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": {},
            }
        )
    # As the service grants them: read exactly the user's queues, configure and write nothing.
    permissions = [
        {
            "user": username,
            "vhost": vhost,
            "configure": NOTHING_PATTERN,
            "write": NOTHING_PATTERN,
            "read": build_queues_read_pattern(names),
        }
        for (vhost, username), names in readable.items()
    ]
    return {"users": list(users.values()), "permissions": permissions, "queues": queues}


def publish_messages(
    api: ManagementAPI,
    subscriptions: Iterable[BrokerSubscription],
    *,
    every: int,
    count: int,
) -> int:
    """Publish `count` persistent messages into every `every`-th subscription's queue."""
    by_vhost: dict[str, list[str]] = {}
    for sub in subscriptions:
        if every > 0 and sub.index % every == 0:
            by_vhost.setdefault(sub.vhost, []).append(sub.queue_name)
    published = 0
    for vhost, queue_names in by_vhost.items():
        connection = pika.BlockingConnection(
            _amqp_parameters(api.host, vhost, api.user, api.password)
        )
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for name in queue_names:
                for number in range(count):
                    channel.basic_publish(
                        exchange="",
                        routing_key=name,
                        body=f'{{"bench": {number}}}'.encode(),
                        properties=pika.BasicProperties(delivery_mode=2),
                    )
                    published += 1
        finally:
            connection.close()
    return published


class ClientConnections:
    """Real AMQP connections logged in as subscription users, each consuming its queue."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.connections: list[Any] = []
        self.usernames: set[str] = set()

    def open(self, subscriptions: Sequence[BrokerSubscription]) -> None:
        """Open one connection (and one consumer) per subscription given."""
        for sub in subscriptions:
            connection = pika.BlockingConnection(
                _amqp_parameters(self.host, sub.vhost, sub.username, sub.password)
            )
            self.connections.append(connection)
            self.usernames.add(sub.username)
            channel = connection.channel()
            channel.basic_qos(prefetch_count=1)
            channel.basic_consume(sub.queue_name, on_message_callback=_ignore_delivery)

    def close(self) -> None:
        """Close every connection this object opened."""
        for connection in self.connections:
            if connection.is_open:
                try:
                    connection.close()
                except pika.exceptions.AMQPError:
                    logger.warning("a bench client connection did not close cleanly")
        self.connections.clear()
        self.usernames.clear()

    def wait_until_listed(self, api: ManagementAPI, *, timeout: float) -> float:
        """Wait (bounded) until the management API lists every connection with its stats."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            listed = api.get("connections", columns="user,state")
            ready = {item["user"] for item in listed if item.get("state")}
            if self.usernames <= ready:
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"the broker did not list {len(self.usernames)} connections in time")


def wait_until_settled(api: ManagementAPI, *, timeout: float) -> list[float]:
    """Time the bulk queue listing until two answers in a row agree within 25 % (the
    broker's stats collectors are busy for a while after thousands of new queues)."""
    timings: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        began = time.perf_counter()
        api.get("queues", **QUEUE_PARAMS)
        timings.append(time.perf_counter() - began)
        if len(timings) >= 2 and abs(timings[-1] - timings[-2]) <= 0.25 * timings[-2]:
            break
        time.sleep(1)
    return timings


def pick_spread(
    subscriptions: Sequence[BrokerSubscription], count: int
) -> list[BrokerSubscription]:
    """`count` subscriptions spread evenly over the fleet (a few agents of every provider)."""
    if count >= len(subscriptions):
        return list(subscriptions)
    step = len(subscriptions) / count
    return [subscriptions[int(number * step)] for number in range(count)]


def delete_bench_objects(api: ManagementAPI) -> tuple[int, int]:
    """Delete every vhost and user tagged as the bench's; return how many of each.

    Deleting a vhost deletes its queues one by one inside the broker, which can outlast
    the HTTP request; so each vhost is retried until the listing no longer shows it."""
    vhosts = _bench_vhosts(api)
    deadline = time.monotonic() + CLEANUP_TIMEOUT
    remaining = vhosts
    while remaining and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=DELETE_THREADS) as pool:
            list(pool.map(lambda vhost: _delete_quietly(api, vhost), remaining))
        remaining = _bench_vhosts(api)
    users = [item["name"] for item in api.get("users") if BENCH_TAG in _as_tags(item.get("tags"))]
    for start in range(0, len(users), DELETE_CHUNK):
        api.send("POST", "users/bulk-delete", {"users": users[start : start + DELETE_CHUNK]})
    if remaining:
        raise RuntimeError(f"could not delete bench vhosts: {remaining}; run --cleanup-only")
    return len(vhosts), len(users)


def _bench_vhosts(api: ManagementAPI) -> list[str]:
    return [
        item["name"]
        for item in api.get("vhosts", columns="name,tags")
        if BENCH_TAG in (item.get("tags") or [])
    ]


def _delete_quietly(api: ManagementAPI, vhost: str) -> None:
    try:
        api.send("DELETE", f"vhosts/{requests.utils.quote(vhost, safe='')}")
    except requests.RequestException as exc:
        logger.warning("deleting bench vhost %s: %s (will check again)", vhost, exc)


def broker_totals(api: ManagementAPI) -> dict[str, int]:
    """Object totals of the whole broker (every tenant, not only the bench's)."""
    overview = api.get("overview")
    totals = overview["object_totals"]
    return {
        "queues": int(totals.get("queues", 0)),
        "connections": int(totals.get("connections", 0)),
        "consumers": int(totals.get("consumers", 0)),
        "vhosts": len(api.get("vhosts", columns="name")),
        "users": len(api.get("users")),
    }


def _as_tags(value: Any) -> list[str]:
    # 3.10 lists user tags as a list; older versions as a comma-separated string.
    if isinstance(value, list):
        return [str(tag) for tag in value]
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",")]
    return []


def _amqp_parameters(host: str, vhost: str, user: str, password: str) -> Any:
    return pika.ConnectionParameters(
        host=host,
        port=AMQP_PORT,
        virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
        # No heartbeats: these connections sit idle in this process, nobody pumps them.
        heartbeat=0,
        connection_attempts=1,
        socket_timeout=10,
        blocked_connection_timeout=30,
    )


def _ignore_delivery(channel: Any, method: Any, properties: Any, body: bytes) -> None:
    """Deliveries are never pumped: with prefetch 1 each consumed queue holds one unacked."""
