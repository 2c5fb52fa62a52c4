"""The live side of the fleet: every connection and every queue, in a fixed number of calls.

Broker JSON is parsed into dataclasses here and nowhere else. Every statistics field is
optional: RabbitMQ lists a Web STOMP connection seconds before it reports its state and
byte counters.

Queue depths come from the queues themselves (`disable_stats=true&enable_queue_totals=true`)
and consumer counts from `/api/consumers`, not from the statistics database: on RabbitMQ
3.10 that is 2-3x cheaper at 3,000-15,000 queues, and current, where the statistics lag
changes by 5-9 s. With `disable_stats`, `/api/queues` has no `consumers` field at all
(asking for the column silently returns nothing), and no `messages` without
`enable_queue_totals`.

On a cluster any node's management API lists every node's connections, queues and
consumers. A connection lives on the node its client connected to (`node`), and goes
with it. A classic queue lives on one node: with that node down, RabbitMQ 3.10.8 still
lists it (its definition is cluster-wide) but without any depth. Seen on a private
3-node cluster (scripts/test_broker_cluster.sh) with node 2 stopped (`stop_app`), in
`/api/queues?disable_stats=true&enable_queue_totals=true&columns=name,vhost,messages,state,node`:

    {"messages": 0, "name": "probe_c1", "node": "agentstats-c1@localhost",
     "state": "running", "vhost": "/"}
    {"name": "probe_c2", "node": "agentstats-c2@localhost", "state": "down", "vhost": "/"}

(no `messages` key at all; without `columns` the same entry has `arguments`, `durable`,
`type: classic` and no depth fields), `GET /api/queues/%2F/probe_c2` answers 404, and
`/api/consumers` lists none of its consumers. When the node is back the queue is
`running` again (non-persistent messages are lost). So a queue with `state: "down"` is
parsed with `messages` None: it exists, its depth is unknown.
"""

import contextvars
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from rmq.client import ManagementClient
from rmq.exceptions import BrokerResponseError
from rmq.types import BrokerConnection, BrokerQueue, BrokerSnapshot

CONNECTION_COLUMNS = "name,user,vhost,peer_host,connected_at,state,recv_oct,send_oct,protocol,node"
QUEUE_PARAMS = {
    "disable_stats": "true",
    "enable_queue_totals": "true",
    "columns": "name,vhost,messages,state,node",
}
CONSUMER_COLUMNS = "queue.name,queue.vhost"


def fetch_broker_snapshot(client: ManagementClient) -> BrokerSnapshot:
    """Read every connection, queue and consumer with three concurrent bulk calls; the
    snapshot names the node that answered the connections listing."""
    calls = {
        "connections": {"columns": CONNECTION_COLUMNS},
        "queues": QUEUE_PARAMS,
        "consumers": {"columns": CONSUMER_COLUMNS},
    }
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="rmq-snapshot") as pool:
        pending = {
            # Each call in a copy of the caller's context, so its call listener hears it.
            resource: pool.submit(
                contextvars.copy_context().run,
                client.fetch_json,
                [resource],
                params=params,
                timeout=client.snapshot_timeout,
            )
            for resource, params in calls.items()
        }
        answers = {resource: future.result() for resource, future in pending.items()}
    bodies = {resource: answer.body for resource, answer in answers.items()}
    # Stamped when the answers are in: a slow broker must not age the snapshot before it
    # is stored, or a fetch longer than the TTL would store one already expired.
    return BrokerSnapshot(
        connections=parse_connections(bodies["connections"]),
        queues=parse_queues(bodies["queues"], consumers=bodies["consumers"]),
        taken_at=datetime.now(tz=UTC),
        answered_by=answers["connections"].node,
    )


def parse_connections(body: Any) -> tuple[BrokerConnection, ...]:
    """Parse GET /api/connections; raise BrokerResponseError on any other shape."""
    return tuple(_parse_connection(item) for item in _as_list_of_objects(body, "connections"))


def parse_queues(body: Any, *, consumers: Any) -> tuple[BrokerQueue, ...]:
    """Parse GET /api/queues with each queue's consumers counted in GET /api/consumers;
    raise BrokerResponseError on any other shape."""
    counts = count_consumers(consumers)
    queues = []
    for item in _as_list_of_objects(body, "queues"):
        vhost, name = _required_str(item, "vhost"), _required_str(item, "name")
        queues.append(
            BrokerQueue(
                vhost=vhost,
                name=name,
                messages=_optional_int(item, "messages"),
                consumers=counts.get((vhost, name), 0),
                state=_optional_str(item, "state"),
                node=_optional_str(item, "node"),
            )
        )
    return tuple(queues)


def count_consumers(body: Any) -> Counter[tuple[str, str]]:
    """Consumers per (vhost, queue name) in GET /api/consumers?columns=queue.name,queue.vhost."""
    counts: Counter[tuple[str, str]] = Counter()
    for item in _as_list_of_objects(body, "consumers"):
        queue = item.get("queue")
        if not isinstance(queue, dict):
            raise BrokerResponseError("management API consumer lacks its queue")
        counts[(_required_str(queue, "vhost"), _required_str(queue, "name"))] += 1
    return counts


def _parse_connection(item: Mapping[str, Any]) -> BrokerConnection:
    connected_at_ms = _optional_int(item, "connected_at")
    try:
        connected_at = (
            datetime.fromtimestamp(connected_at_ms / 1000, tz=UTC)
            if connected_at_ms is not None
            else None
        )
    except (OverflowError, OSError, ValueError) as exc:
        raise BrokerResponseError("management API field 'connected_at' is not a time") from exc
    return BrokerConnection(
        name=_required_str(item, "name"),
        user=_required_str(item, "user"),
        vhost=_required_str(item, "vhost"),
        peer_host=_optional_str(item, "peer_host"),
        connected_at=connected_at,
        state=_optional_str(item, "state"),
        recv_oct=_optional_int(item, "recv_oct"),
        send_oct=_optional_int(item, "send_oct"),
        protocol=_optional_str(item, "protocol"),
        node=_optional_str(item, "node"),
    )


def _as_list_of_objects(body: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise BrokerResponseError(f"management API {what} body is not a list of objects")
    return body


def _required_str(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise BrokerResponseError(f"management API item lacks a string {key!r}")
    return value


def _optional_str(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BrokerResponseError(f"management API field {key!r} is not a string")
    return value


def _optional_int(item: Mapping[str, Any], key: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrokerResponseError(f"management API field {key!r} is not an integer")
    return value
