"""In-process measurements: query and broker-call counts, and where the time goes.

Runs the app's own read path (selectors, snapshot, merge, response builder, renderer) in
this process against the bench database and the real broker, so each stage can be timed
on its own, with the app's garbage-collector tuning applied to this process as gunicorn's
workers apply it. The app's choices are also timed against what they replaced: the
serializers (still the schema, checked to give the same bytes) and Python's default GC
thresholds.
"""

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from unittest import mock

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from bench.probes import ENDPOINT_PATH
from marketplace.stats.answers import fetch_connection_stats_data, render_json
from marketplace.stats.merge import build_connection_report
from marketplace.stats.rendering import prepare_agents, render_report
from marketplace.stats.selectors import AgentFilters, list_agent_rows
from marketplace.stats.serializers import ConnectionStatsOutputSerializer
from rmq.client import ManagementClient
from rmq.snapshot import (
    CONNECTION_COLUMNS,
    CONSUMER_COLUMNS,
    QUEUE_PARAMS,
    fetch_broker_snapshot,
    parse_connections,
    parse_queues,
)

CACHE_PROBE_KEY = "agentstats-bench:snapshot-probe"
PROFILING_READ_TIMEOUT = 60.0
# CPython's own defaults, which the app's GC_THRESHOLDS replace in its server processes.
PYTHON_GC_THRESHOLDS = (700, 10, 10)
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
        with _stopwatch(timings, "prepare"):
            prepared = prepare_agents(rows)
        with _stopwatch(timings, "snapshot"):
            snapshot = fetch_broker_snapshot(broker)
        with _stopwatch(timings, "merge"):
            report = build_connection_report(rows, snapshot)
        with _stopwatch(timings, "fill"):
            data = render_report(report, prepared)
        with _stopwatch(timings, "render"):
            render_json(data)
        with _stopwatch(timings, "combined"):
            render_json(fetch_connection_stats_data(AgentFilters(), broker=broker))
        cache.set(CACHE_PROBE_KEY, snapshot, timeout=60)
        with _stopwatch(timings, "cache_get"):
            cache.get(CACHE_PROBE_KEY)
        cache.delete(CACHE_PROBE_KEY)
    # Once: the queue listing alone, and parsing the three bodies into dataclasses.
    connections_body = broker.get_json(["connections"], params={"columns": CONNECTION_COLUMNS})
    consumers_body = broker.get_json(["consumers"], params={"columns": CONSUMER_COLUMNS})
    with _stopwatch(timings, "queues_get"):
        queues_body = broker.get_json(["queues"], params=QUEUE_PARAMS)
    with _stopwatch(timings, "parse"):
        parse_connections(connections_body)
        parse_queues(queues_body, consumers=consumers_body)
    median = {name: statistics.median(values) for name, values in timings.items()}
    orm = median["rows"] - median["sql"]
    after_snapshot = median["merge"] + median["fill"] + median["render"]
    return [
        Stage(
            "DB rows: list_agent_rows (while the broker answers)",
            median["rows"],
            f"SQL execute {median['sql']:.3f} s, building AgentRows from the rows {orm:.3f} s",
        ),
        Stage(
            "database half of the body: prepare_agents (while the broker answers)",
            median["prepare"],
        ),
        Stage(
            "broker snapshot: fetch_broker_snapshot",
            median["snapshot"],
            f"GET /api/queues alone {median['queues_get']:.3f} s incl. JSON decode; "
            f"parsing the three bodies into dataclasses {median['parse']:.3f} s",
        ),
        Stage("merge: build_connection_report (after the snapshot)", median["merge"]),
        Stage("live fields: render_report (after the snapshot)", median["fill"]),
        Stage(
            "write JSON: render_json(data) (after the snapshot)",
            median["render"],
            f"work after the snapshot in all: {after_snapshot:.3f} s",
        ),
        Stage(
            "as the app runs them: fetch_connection_stats_data + render (rows and database "
            "half while the snapshot is fetched)",
            median["combined"],
            "to compare with the snapshot alone above",
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
    before_seconds: float
    app_seconds: float
    # "yes"/"NO" when the outputs were compared, "same code" when only timing differs.
    identical: str


def compare_alternatives(*, repeats: int) -> list[Alternative]:
    """Time the app's choices against what they replaced, with the snapshot fixed."""
    broker = profiling_client()
    snapshot = fetch_broker_snapshot(broker)
    report = build_connection_report(list_agent_rows(AgentFilters()), snapshot)
    data = render_report(report)
    serializer_body = JSONRenderer().render(ConnectionStatsOutputSerializer(report).data)
    is_same = "yes" if render_json(data) == serializer_body else "NO"

    def app_path() -> bytes:
        rows = list_agent_rows(AgentFilters())
        prepared = prepare_agents(rows)
        report = build_connection_report(rows, snapshot)
        return render_json(render_report(report, prepared))

    return [
        Alternative(
            "build the body: ConnectionStatsOutputSerializer(report).data (the schema's "
            "serializers) vs render_report(report)",
            _median_of(repeats, lambda: ConnectionStatsOutputSerializer(report).data),
            _median_of(repeats, lambda: render_report(report)),
            is_same,
        ),
        Alternative(
            "rows + database half + merge + live fields + render (snapshot fixed): Python's "
            f"GC thresholds {PYTHON_GC_THRESHOLDS} vs the app's GC_THRESHOLDS "
            f"{settings.GC_THRESHOLDS}",
            _median_of(repeats, lambda: _with_gc_threshold(PYTHON_GC_THRESHOLDS, app_path)),
            _median_of(repeats, app_path),
            "same code",
        ),
        Alternative(
            "write JSON: DRF's JSONRenderer().render(data) vs render_json(data) (orjson)",
            _median_of(repeats, lambda: JSONRenderer().render(data)),
            _median_of(repeats, lambda: render_json(data)),
            "yes" if JSONRenderer().render(data) == render_json(data) else "NO",
        ),
    ]


def profiling_client() -> ManagementClient:
    """The app's client with a long read timeout: the profile times stages, and a broker
    that answers slower than the app's timeout would otherwise leave a stage unmeasured."""
    return ManagementClient(
        settings.RABBITMQ_MANAGEMENT_URL,
        user=settings.RABBITMQ_USER,
        password=settings.RABBITMQ_PASSWORD,
        connect_timeout=settings.RABBITMQ_CONNECT_TIMEOUT,
        read_timeout=PROFILING_READ_TIMEOUT,
        snapshot_read_timeout=PROFILING_READ_TIMEOUT,
    )


def _with_gc_threshold(thresholds: tuple[int, ...], work: Callable[[], T]) -> T:
    previous = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        return work()
    finally:
        gc.set_threshold(*previous)


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
