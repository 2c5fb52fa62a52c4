"""In-process measurements: query and broker-call counts, and where the time goes.

Runs the app's own read path (selectors, snapshot, merge, serializer, renderer) in this
process against the bench database and the real broker, so each stage can be timed on
its own. `report_to_data_flat` is a candidate faster path (plain dicts instead of the
nested serializers), measured side by side with the app's and checked to give exactly
the app's JSON.
"""

import dataclasses
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from unittest import mock
from uuid import UUID

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from agentstats.connections import (
    AgentStatus,
    ConnectionReport,
    build_connection_report,
)
from agentstats.selectors import AgentFilters, fetch_connection_report, list_agent_rows
from agentstats.serializers import ConnectionStatsOutputSerializer
from bench.probes import ENDPOINT_PATH
from rmq.client import ManagementClient
from rmq.snapshot import (
    CONNECTION_COLUMNS,
    QUEUE_COLUMNS,
    fetch_broker_snapshot,
    parse_connections,
    parse_queues,
)

CACHE_PROBE_KEY = "agentstats-bench:snapshot-probe"
PROFILING_READ_TIMEOUT = 60.0
# Allocation-heavy requests (tens of thousands of objects) trigger the cyclic GC often;
# a larger first threshold is the usual remedy, measured here side by side.
GC_THRESHOLD = (50_000, 20, 100)
T = TypeVar("T")


@dataclass(frozen=True)
class Counts:
    """What one request costs in queries and broker calls."""

    rows_queries: int
    request_queries: int
    broker_calls: tuple[str, ...]
    status: int
    body: bytes


def count_request_costs(token: str) -> Counts:
    """Count SQL queries of list_agent_rows and of a whole in-process request, and the
    broker calls that request makes (every requests.Session.request is recorded)."""
    with CaptureQueriesContext(connection) as rows_queries:
        list_agent_rows(AgentFilters())
    client = Client(headers={"Authorization": f"Token {token}"})
    with (
        CaptureQueriesContext(connection) as request_queries,
        _recorded_http_calls() as calls,
    ):
        response = client.get(ENDPOINT_PATH)
    return Counts(
        rows_queries=len(rows_queries.captured_queries),
        request_queries=len(request_queries.captured_queries),
        broker_calls=tuple(calls),
        status=response.status_code,
        body=response.content,
    )


@contextmanager
def _recorded_http_calls() -> Iterator[list[str]]:
    calls: list[str] = []
    original = requests.Session.request

    def record(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        calls.append(f"{method} {url.split('?')[0]}")
        return original(self, method, url, **kwargs)

    with mock.patch.object(requests.Session, "request", record):
        yield calls


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    note: str = ""
    # False for rows that are not one stage of an uncached request (shown apart).
    is_cold_path: bool = True


def profile_read_path(*, repeats: int) -> list[Stage]:
    """Median time of each stage of the endpoint's work, run in this process."""
    broker = profiling_client()
    timings: dict[str, list[float]] = {}
    for _ in range(repeats):
        with _timed_sql() as sql, _stopwatch(timings, "rows"):
            rows = list_agent_rows(AgentFilters())
        timings.setdefault("sql", []).append(sum(sql))
        with _stopwatch(timings, "snapshot"):
            snapshot = fetch_broker_snapshot(broker)
        with _stopwatch(timings, "merge"):
            report = build_connection_report(rows, snapshot)
        with _stopwatch(timings, "serialize"):
            data = ConnectionStatsOutputSerializer(report).data
        with _stopwatch(timings, "render"):
            JSONRenderer().render(data)
        with _stopwatch(timings, "combined"):
            fetch_connection_report(AgentFilters(), broker=broker)
        cache.set(CACHE_PROBE_KEY, snapshot, timeout=60)
        with _stopwatch(timings, "cache_get"):
            cache.get(CACHE_PROBE_KEY)
        cache.delete(CACHE_PROBE_KEY)
    # Once: the queue listing alone, and parsing both bodies into dataclasses.
    connections_body = broker.get_json(["connections"], params={"columns": CONNECTION_COLUMNS})
    with _stopwatch(timings, "queues_get"):
        queues_body = broker.get_json(["queues"], params={"columns": QUEUE_COLUMNS})
    with _stopwatch(timings, "parse"):
        parse_connections(connections_body)
        parse_queues(queues_body)
    median = {name: statistics.median(values) for name, values in timings.items()}
    orm = median["rows"] - median["sql"]
    return [
        Stage(
            "DB rows: list_agent_rows",
            median["rows"],
            f"SQL execute {median['sql']:.3f} s, building AgentRows from the rows {orm:.3f} s",
        ),
        Stage(
            "broker snapshot: fetch_broker_snapshot",
            median["snapshot"],
            f"GET /api/queues alone {median['queues_get']:.3f} s incl. JSON decode; "
            f"parsing both bodies into dataclasses {median['parse']:.3f} s",
        ),
        Stage("merge: build_connection_report", median["merge"]),
        Stage("serialize: ConnectionStatsOutputSerializer(report).data", median["serialize"]),
        Stage("render: JSONRenderer().render(data)", median["render"]),
        Stage(
            "as the app runs them: fetch_connection_report (rows load while the snapshot "
            "is fetched, then merge)",
            median["combined"],
            "to compare with rows + snapshot + merge above",
            is_cold_path=False,
        ),
        Stage(
            "cached path instead of the snapshot: cache.get of the shared snapshot",
            median["cache_get"],
            f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]} unpickles the whole "
            "snapshot on every hit",
            is_cold_path=False,
        ),
    ]


@dataclass(frozen=True)
class Alternative:
    name: str
    app_seconds: float
    alternative_seconds: float
    # "yes"/"NO" when the outputs were compared, "same code" when only timing differs.
    identical: str


def compare_alternatives(*, repeats: int) -> list[Alternative]:
    """Time parts of the app's read path against candidate faster versions of them."""
    broker = profiling_client()
    snapshot = fetch_broker_snapshot(broker)
    report = build_connection_report(list_agent_rows(AgentFilters()), snapshot)
    app_json = json.loads(JSONRenderer().render(ConnectionStatsOutputSerializer(report).data))
    flat_json = json.loads(json.dumps(report_to_data_flat(report)))
    is_same = "yes" if flat_json == app_json else "NO"

    def app_path() -> bytes:
        report = build_connection_report(list_agent_rows(AgentFilters()), snapshot)
        return JSONRenderer().render(ConnectionStatsOutputSerializer(report).data)

    def flat_path() -> bytes:
        report = build_connection_report(list_agent_rows(AgentFilters()), snapshot)
        return json.dumps(report_to_data_flat(report)).encode()

    app_seconds = _median_of(repeats, app_path)
    return [
        Alternative(
            "serialize: ConnectionStatsOutputSerializer(report).data vs plain dicts",
            _median_of(repeats, lambda: ConnectionStatsOutputSerializer(report).data),
            _median_of(repeats, lambda: report_to_data_flat(report)),
            is_same,
        ),
        Alternative(
            "render: JSONRenderer().render vs json.dumps of the plain dicts",
            _median_of(repeats, lambda: JSONRenderer().render(app_json)),
            _median_of(repeats, lambda: json.dumps(flat_json).encode()),
            "same data",
        ),
        Alternative(
            "rows + merge + serialize + render (snapshot fixed): default GC thresholds "
            f"{gc.get_threshold()} vs gc.set_threshold{GC_THRESHOLD}",
            app_seconds,
            _median_of(repeats, lambda: _with_gc_threshold(app_path)),
            "same code",
        ),
        Alternative(
            f"the same: app as is vs plain dicts + json.dumps + gc.set_threshold{GC_THRESHOLD}",
            app_seconds,
            _median_of(repeats, lambda: _with_gc_threshold(flat_path)),
            is_same,
        ),
    ]


@dataclass(frozen=True)
class PrototypeRun:
    """The prototype read path timed against the floor, alternately, in this process."""

    prototype: list[float]
    floor: list[float]


def time_prototype(floor: Callable[[], float], *, repeats: int) -> PrototypeRun:
    """Alternate the floor and the prototype read path (the app's, with plain dicts,
    json.dumps and a larger GC threshold) and time both."""
    broker = profiling_client()
    prototype: list[float] = []
    floors: list[float] = []
    for _ in range(repeats):
        floors.append(floor())
        started = time.perf_counter()
        _with_gc_threshold(lambda: build_prototype_response(broker))
        prototype.append(time.perf_counter() - started)
    return PrototypeRun(prototype=prototype, floor=floors)


def build_prototype_response(broker: ManagementClient) -> bytes:
    """The whole unfiltered response: the app's fetch_connection_report, then plain dicts
    and json.dumps instead of the serializer and renderer (same JSON, as checked above)."""
    report = fetch_connection_report(AgentFilters(), broker=broker)
    return json.dumps(report_to_data_flat(report)).encode()


def profiling_client() -> ManagementClient:
    """The app's client with a long read timeout: the profile times stages, and a broker
    that answers slower than the app's timeout would otherwise leave a stage unmeasured."""
    return ManagementClient(
        settings.RABBITMQ_MANAGEMENT_URL,
        user=settings.RABBITMQ_USER,
        password=settings.RABBITMQ_PASSWORD,
        connect_timeout=settings.RABBITMQ_CONNECT_TIMEOUT,
        read_timeout=PROFILING_READ_TIMEOUT,
    )


def _with_gc_threshold(work: Callable[[], T]) -> T:
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        return work()
    finally:
        gc.set_threshold(*previous)


def report_to_data_flat(report: ConnectionReport) -> dict[str, Any]:
    """The endpoint's response body built as plain dicts, field for field the serializer's."""
    summary = report.summary
    return {
        "agents": [_agent_data(agent) for agent in report.agents],
        # Every summary field is a number or a time; taken generically so a new one is kept.
        "summary": {
            item.name: _plain(getattr(summary, item.name)) for item in dataclasses.fields(summary)
        },
    }


def _plain(value: object) -> object:
    return _iso(value) if isinstance(value, datetime) else value


def _agent_data(agent: AgentStatus) -> dict[str, Any]:
    row = agent.row
    return {
        "uuid": str(row.uuid),
        "name": row.name,
        "offering_uuid": str(row.offering_uuid),
        "offering_name": row.offering_name,
        "version": row.version,
        "last_restarted": _iso(row.last_restarted),
        "connected": agent.is_connected,
        "event_consumer_uuid": None,
        "user_uuid": _uuid_or_none(row.user_uuid),
        "user_username": row.user_username,
        "user_full_name": row.user_full_name,
        "user_is_staff": row.user_is_staff,
        "auth_kind": None,
        "auth_token_prefix": None,
        "auth_token_name": None,
        "authorized_via": None,
        "delivery_blocked_reason": None,
        "services": [
            {
                "uuid": str(service.uuid),
                "name": service.name,
                "state": service.state,
                "modified": _iso(service.modified),
            }
            for service in row.services
        ],
        "event_subscriptions": [
            {
                "uuid": str(sub.uuid),
                "created": _iso(sub.created),
                "observable_objects": [dict(item) for item in sub.observable_objects],
                "rmq_connection": {
                    "connected": sub.rmq_connection.connected,
                    "source_ip": sub.rmq_connection.source_ip,
                    "connected_at": _iso(sub.rmq_connection.connected_at),
                    "state": sub.rmq_connection.state,
                    "recv_oct": sub.rmq_connection.recv_oct,
                    "send_oct": sub.rmq_connection.send_oct,
                    "node": sub.rmq_connection.node,
                    "protocol": sub.rmq_connection.protocol,
                },
            }
            for sub in agent.event_subscriptions
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": queue.vhost,
                "messages": queue.messages,
                "consumers": queue.consumers,
                "object_type": queue.object_type,
                "kind": queue.kind,
                "exists_on_broker": queue.exists_on_broker,
            }
            for queue in agent.queues
        ],
    }


def _iso(value: datetime | None) -> str | None:
    # DRF's DateTimeField: ISO 8601 in the current time zone (UTC), 'Z' for +00:00.
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _uuid_or_none(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@contextmanager
def _stopwatch(timings: dict[str, list[float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings.setdefault(name, []).append(time.perf_counter() - started)


def _median_of(repeats: int, work: Callable[[], object]) -> float:
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        values.append(time.perf_counter() - started)
    return statistics.median(values)


@contextmanager
def _timed_sql() -> Iterator[list[float]]:
    spent: list[float] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.append(time.perf_counter() - started)

    with connection.execute_wrapper(wrapper):
        yield spent
