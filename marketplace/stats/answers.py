"""The stats answer: agent rows merged with the shared broker snapshot, rendered as JSON,
compressed once, and shared through the cache by pollers asking the same question.

A shared answer is two cache entries: a small one per filter set (`SharedAnswer`: the
ETag, the snapshot's time) that every request reads, and the bodies under their ETag,
which each process reads once into a small in-memory LRU, so a 30 MB body is not fetched
from Redis and unpickled per request. A refresh of the snapshot builds the answer for the
filters that started it before publishing the snapshot (rmq.snapshot_cache), so pollers
wait neither on the broker nor on rendering; a request whose filters have no answer for
the current snapshot builds and shares it (a database wait, never a broker wait).
"""

import gzip
import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connections

from marketplace.stats.merge import ConnectionReport, build_connection_report
from marketplace.stats.rendering import JSONObject, format_time, prepare_agents, render_report
from marketplace.stats.selectors import AgentFilters, list_agent_rows
from rmq.client import ManagementClient
from rmq.snapshot_cache import SnapshotWait, read_broker_snapshot
from rmq.types import BrokerSnapshot

SHARED_ANSWER_KEY = "agentstats:connection-stats:"
ANSWER_BODY_KEY = "agentstats:connection-stats-body:"
# Measured on a 1,000 and a 10,000-agent answer (2.7 and 26.9 MB): level 6 makes them 290 kB
# and 2.9 MB in 47 and 175 ms, level 3 is 15% larger in 10 and 101 ms, level 9 3% smaller in
# twice the time. The body is compressed once per snapshot, beside the pollers, and sent to
# every one of them: size wins.
GZIP_LEVEL = 6
# The bodies a process keeps in memory (both encodings), newest first; at least one.
MEMORY_BYTES = 96 * 2**20
UNFILTERED = AgentFilters()
_LINE_SEPARATOR = "\u2028".encode()
_PARAGRAPH_SEPARATOR = "\u2029".encode()


def fetch_connection_report(
    filters: AgentFilters, *, broker: ManagementClient, wait_seconds: float | None = None
) -> ConnectionReport:
    """Build the report from the shared snapshot; raises BrokerError when there is none to
    serve (see rmq.snapshot_cache; `wait_seconds` bounds the wait for a cold one)."""
    prepare = partial(_share_answers_in_background, None)
    wait = read_broker_snapshot(broker, prepare=prepare, wait_seconds=wait_seconds)
    return build_connection_report(
        list_agent_rows(filters), wait.snapshot, connected=filters.connected
    )


def fetch_connection_stats_data(filters: AgentFilters, *, broker: ManagementClient) -> JSONObject:
    """The endpoint's response body from the shared snapshot; raises BrokerError when there
    is none to serve."""
    return build_connection_stats_data(filters, read_broker_snapshot(broker).snapshot)


def build_connection_stats_data(filters: AgentFilters, snapshot: BrokerSnapshot) -> JSONObject:
    """The endpoint's response body: the agent rows merged with `snapshot`."""
    rows = list_agent_rows(filters)
    prepared = prepare_agents(rows)
    report = build_connection_report(rows, snapshot, connected=filters.connected)
    return render_report(report, prepared)


@dataclass(frozen=True)
class SharedAnswer:
    """What every request reads of a shared answer: its ETag and its snapshot's time."""

    etag: str
    taken_at: datetime

    @property
    def body_key(self) -> str:
        """The bodies' key: the ETag leaves the snapshot's time out, the bodies hold it."""
        return f"{ANSWER_BODY_KEY}{self.etag}@{self.taken_at.timestamp()}"


@dataclass(frozen=True)
class AnswerBodies:
    """The JSON body and the same bytes gzipped."""

    identity: bytes
    gzipped: bytes

    @property
    def size(self) -> int:
        return len(self.identity) + len(self.gzipped)


@dataclass(frozen=True)
class StatsAnswer:
    """An answer and how this request got it (`is_built`: it rendered the answer itself)."""

    shared: SharedAnswer
    bodies: AnswerBodies
    snapshot_wait: SnapshotWait
    is_built: bool


def fetch_connection_stats_answer(
    filters: AgentFilters, *, broker: ManagementClient
) -> StatsAnswer:
    """The endpoint's answer for `filters`, shared by every request with the same filters
    while it matches the shared snapshot (see the module). Raises BrokerError when there is
    no snapshot to serve."""
    is_shared = settings.BROKER_SNAPSHOT_TTL > 0
    if filters == UNFILTERED:
        _unfiltered_polls.note()
    wait = read_broker_snapshot(broker, prepare=partial(_share_answers_in_background, filters))
    if is_shared:
        found = cache.get(_answer_key(filters))
        # An answer built from this snapshot, or from a newer one published meanwhile.
        if isinstance(found, SharedAnswer) and found.taken_at >= wait.snapshot.taken_at:
            bodies = _read_bodies(found)
            if bodies is not None:
                return StatsAnswer(found, bodies, wait, is_built=False)
    shared, bodies = build_answer(filters, wait.snapshot)
    if is_shared:
        _store_answer(filters, shared, bodies)
    return StatsAnswer(shared, bodies, wait, is_built=True)


def build_answer(
    filters: AgentFilters, snapshot: BrokerSnapshot
) -> tuple[SharedAnswer, AnswerBodies]:
    """Render the answer for `filters` from `snapshot`, compress it, and name it.

    The ETag leaves out summary.snapshot_taken_at: it names the fleet's picture, which on
    a quiet fleet stays the same from one snapshot to the next, so a poller holding it is
    answered 304 (the age is in the headers of every answer).
    """
    data = build_connection_stats_data(filters, snapshot)
    body = render_json(data)
    taken_at = format_time(snapshot.taken_at)
    # Only a key can hold `"snapshot_taken_at":"` unescaped, and only the summary has it.
    stamp = orjson.dumps({"snapshot_taken_at": taken_at})[1:-1]
    digest = hashlib.sha256(body.replace(stamp, b"", 1)).hexdigest()[:32]
    bodies = AnswerBodies(
        identity=body, gzipped=gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    )
    return SharedAnswer(etag=f'W/"{digest}"', taken_at=snapshot.taken_at), bodies


def render_json(data: JSONObject) -> bytes:
    """The body exactly as the API's JSON renderer (DRF's) writes it, five times faster.

    Both write compact UTF-8; DRF also escapes U+2028 and U+2029 for embedding in scripts.
    """
    body = orjson.dumps(data)
    # Both separators start with the same two UTF-8 bytes: one scan usually settles it.
    if _LINE_SEPARATOR[:2] in body:
        body = body.replace(_LINE_SEPARATOR, rb"\u2028").replace(_PARAGRAPH_SEPARATOR, rb"\u2029")
    return body


def _share_answers_in_background(filters: AgentFilters | None, snapshot: BrokerSnapshot) -> None:
    """Build and share the answers for the filters that started the refresh and, if this
    process was asked for it lately, for the whole fleet (the pollers' question)."""
    wanted = [] if filters is None else [filters]
    if UNFILTERED not in wanted and _unfiltered_polls.is_recent():
        wanted.append(UNFILTERED)
    # Runs in the snapshot's refresh thread, which has its own database connection.
    close_old_connections()
    try:
        for each in wanted:
            _store_answer(each, *build_answer(each, snapshot))
    finally:
        connections.close_all()


class _PollNote:
    """When this process was last asked for an answer (monotonic seconds)."""

    def __init__(self) -> None:
        self._asked_at: float | None = None

    def note(self) -> None:
        self._asked_at = time.monotonic()

    def is_recent(self) -> bool:
        asked_at = self._asked_at
        return (
            asked_at is not None and time.monotonic() - asked_at < settings.BROKER_SNAPSHOT_MAX_AGE
        )

    def forget(self) -> None:
        self._asked_at = None


_unfiltered_polls = _PollNote()


def _answer_key(filters: AgentFilters) -> str:
    return SHARED_ANSWER_KEY + hashlib.sha256(repr(filters).encode()).hexdigest()


def _store_answer(filters: AgentFilters, shared: SharedAnswer, bodies: AnswerBodies) -> None:
    # Kept longer than its snapshot may be served (the answer is built after the snapshot
    # was taken); the bodies first, so a request that reads the small entry finds them.
    timeout = 2 * math.ceil(settings.BROKER_SNAPSHOT_MAX_AGE)
    stored = cache.get(_answer_key(filters))
    if isinstance(stored, SharedAnswer) and stored.taken_at > shared.taken_at:
        return  # a refresh shared a newer one while this request built its own
    _memory.put(shared.body_key, bodies)
    cache.set(shared.body_key, bodies, timeout=timeout)
    cache.set(_answer_key(filters), shared, timeout=timeout)


def _read_bodies(shared: SharedAnswer) -> AnswerBodies | None:
    bodies = _memory.get(shared.body_key)
    if bodies is None:
        found = cache.get(shared.body_key)
        if isinstance(found, AnswerBodies):
            bodies = found
            _memory.put(shared.body_key, bodies)
    return bodies


class _BodyMemory:
    """The last bodies this process served, by key, within MEMORY_BYTES."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, AnswerBodies] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: str) -> AnswerBodies | None:
        with self._guard:
            bodies = self._bodies.get(key)
            if bodies is not None:
                self._bodies.move_to_end(key)
            return bodies

    def put(self, key: str, bodies: AnswerBodies) -> None:
        with self._guard:
            self._bodies[key] = bodies
            self._bodies.move_to_end(key)
            total = sum(kept.size for kept in self._bodies.values())
            while total > self.max_bytes and len(self._bodies) > 1:
                _, dropped = self._bodies.popitem(last=False)
                total -= dropped.size

    def clear(self) -> None:
        with self._guard:
            self._bodies.clear()


_memory = _BodyMemory(MEMORY_BYTES)


def forget_answers_in_memory() -> None:
    """Drop the bodies this process keeps, and when it was polled (tests: answers never
    leak between them)."""
    _memory.clear()
    _unfiltered_polls.forget()
