"""The stats answer: agent rows merged with the shared broker snapshot, rendered as JSON,
compressed once, and shared through the cache by pollers asking the same question.

A shared answer is two cache entries per filter set: a small one (`SharedAnswer`: the
ETag, the snapshot's time) that every request reads, and the bodies, which each process
reads once into a small in-memory LRU, so a 30 MB body is not fetched from Redis and
unpickled per request. A refresh of the snapshot builds the answer for the filters that
started it once the snapshot is published (rmq.snapshot_cache). Until an answer for the
newest snapshot is there, requests are served the previous answer (never older than
BROKER_SNAPSHOT_MAX_AGE) while one process rebuilds it, so pollers wait neither on the
broker nor on rendering. Only a request with no answer to serve builds its own (a
database wait, never a broker wait), one thread per process at a time.
"""

import contextvars
import gzip
import hashlib
import logging
import math
import threading
import time
import uuid
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
from rmq.clock import current_clock
from rmq.snapshot_cache import (
    SnapshotWait,
    forget_snapshot_in_memory,
    load_snapshot,
    read_broker_snapshot,
    shared_snapshot_head,
)
from rmq.types import BrokerSnapshot

SHARED_ANSWER_KEY = "agentstats:connection-stats:"
ANSWER_BODY_KEY = "agentstats:connection-stats-body:"
BUILD_LOCK_KEY = "agentstats:connection-stats-build:"
# Longer than the slowest build measured (about 9 s at 10,000 agents on a busy machine):
# a builder that died holds up others' rebuilds this long at most.
BUILD_LOCK_SECONDS = 60
# Measured on a 1,000 and a 10,000-agent answer (2.7 and 26.9 MB): level 6 makes them 290 kB
# and 2.9 MB in 47 and 175 ms, level 3 is 15% larger in 10 and 101 ms, level 9 3% smaller in
# twice the time. The body is compressed once per snapshot, beside the pollers, and sent to
# every one of them: size wins.
GZIP_LEVEL = 6
# The bodies a process keeps in memory (both encodings), newest first; at least one.
MEMORY_BYTES = 96 * 2**20
UNFILTERED = AgentFilters()
logger = logging.getLogger(__name__)
_LINE_SEPARATOR = "\u2028".encode()
_PARAGRAPH_SEPARATOR = "\u2029".encode()


def fetch_connection_report(
    filters: AgentFilters, *, broker: ManagementClient, wait_seconds: float | None = None
) -> ConnectionReport:
    """Build the report from the shared snapshot; raises BrokerError when there is none to
    serve (see rmq.snapshot_cache; `wait_seconds` bounds the wait for a cold one)."""
    prepare = partial(_share_answers_after_refresh, None)
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
        """The bodies' name: the ETag leaves the snapshot's time out, the bodies hold it."""
        return f"{self.etag}@{self.taken_at.timestamp()}"


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
    (see the module). Raises BrokerError when there is no snapshot to serve.

    An answer built from an older snapshot than the newest is served while it is younger
    than BROKER_SNAPSHOT_MAX_AGE, and rebuilt beside the request (one build at a time
    across processes), so a new snapshot never sends every poller to render at once.
    """
    if filters == UNFILTERED:
        _unfiltered_polls.note()
    wait = read_broker_snapshot(broker, prepare=partial(_share_answers_after_refresh, filters))
    if settings.BROKER_SNAPSHOT_TTL <= 0:
        shared, bodies = build_answer(filters, wait.snapshot)
        return StatsAnswer(shared, bodies, wait, is_built=True)
    found = _read_answer(filters)
    if found is not None:
        if found[0].taken_at >= wait.taken_at:
            return StatsAnswer(*found, wait, is_built=False)
        age = current_clock().time() - found[0].taken_at.timestamp()
        if age < settings.BROKER_SNAPSHOT_MAX_AGE:
            _start_answer_build(filters)
            return StatsAnswer(*found, wait, is_built=False)
    # Nothing to serve for these filters: build it, one thread of this process at a time.
    with _build_guards.guard(_answer_key(filters)):
        found = _read_answer(filters)
        if found is not None and found[0].taken_at >= wait.taken_at:
            return StatsAnswer(*found, wait, is_built=False)
        shared, bodies = build_answer(filters, wait.snapshot)
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


def _share_answers_after_refresh(filters: AgentFilters | None, snapshot: BrokerSnapshot) -> None:
    """Build and share the answers for the filters that started the refresh and, if this
    process was asked for it lately, for the whole fleet (the pollers' question)."""
    wanted = [] if filters is None else [filters]
    if UNFILTERED not in wanted and _unfiltered_polls.is_recent():
        wanted.append(UNFILTERED)
    # Runs in the snapshot's refresh thread, which has its own database connection.
    close_old_connections()
    try:
        for each in wanted:
            _build_if_unclaimed(each, snapshot)
    finally:
        connections.close_all()


def _start_answer_build(filters: AgentFilters) -> None:
    """Rebuild the answer for `filters` from the newest snapshot in a thread, unless this
    process is already at it."""
    key = _answer_key(filters)
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(_build_in_background, filters, key),
        name="stats-answer-build",
        daemon=True,
    )
    with _building_guard:
        if key in _building:
            return
        _building.add(key)
        # Only the builds still running are kept (for join_answer_builds).
        _build_threads[:] = [each for each in _build_threads if each.is_alive()]
        _build_threads.append(thread)
    thread.start()


def join_answer_builds(timeout: float) -> bool:
    """Wait for this process's answer builds to end; whether none is running (tests)."""
    with _building_guard:
        threads = list(_build_threads)
    for thread in threads:
        thread.join(timeout)
        if thread.is_alive():
            return False
    return True


def _build_in_background(filters: AgentFilters, key: str) -> None:
    try:
        head = shared_snapshot_head()
        if head is not None:
            _build_if_unclaimed(filters, load_snapshot(head))
    except Exception:
        # A daemon thread's exception would only reach stderr; requests build it themselves.
        logger.exception("building the shared stats answer failed")
    finally:
        connections.close_all()
        with _building_guard:
            _building.discard(key)


def _build_if_unclaimed(filters: AgentFilters, snapshot: BrokerSnapshot) -> None:
    """Build and share the answer for `filters` from `snapshot`, unless another process is
    building it or an answer as new is shared already."""
    key = _answer_key(filters)
    stored = cache.get(key)
    if isinstance(stored, SharedAnswer) and stored.taken_at >= snapshot.taken_at:
        return
    token = uuid.uuid4().hex
    if not cache.add(BUILD_LOCK_KEY + key, token, timeout=BUILD_LOCK_SECONDS):
        return
    try:
        _store_answer(filters, *build_answer(filters, snapshot))
    finally:
        if cache.get(BUILD_LOCK_KEY + key) == token:
            cache.delete(BUILD_LOCK_KEY + key)


_building_guard = threading.Lock()
_building: set[str] = set()
_build_threads: list[threading.Thread] = []


class _KeyGuards:
    """A fixed set of locks picked by key, so threads of a process building the same answer
    take turns (however many filter sets are asked, the locks stay this many)."""

    def __init__(self, count: int = 64) -> None:
        self._locks = tuple(threading.Lock() for _ in range(count))

    def guard(self, key: str) -> threading.Lock:
        return self._locks[int(key[-8:], 16) % len(self._locks)]


_build_guards = _KeyGuards()


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
    # One bodies key per filter set, overwritten: a cache that drops expired keys only
    # when read (local memory) keeps one body per filter set, not one per snapshot.
    timeout = 2 * math.ceil(settings.BROKER_SNAPSHOT_MAX_AGE)
    key = _answer_key(filters)
    stored = cache.get(key)
    if isinstance(stored, SharedAnswer) and stored.taken_at > shared.taken_at:
        return  # a refresh shared a newer one while this request built its own
    _memory.put(shared.body_key, bodies)
    cache.set(ANSWER_BODY_KEY + key, (shared.body_key, bodies), timeout=timeout)
    cache.set(key, shared, timeout=timeout)


def _read_answer(filters: AgentFilters) -> tuple[SharedAnswer, AnswerBodies] | None:
    """The shared answer for `filters` with its bodies (from memory, else the cache)."""
    key = _answer_key(filters)
    for _ in range(2):
        shared = cache.get(key)
        if not isinstance(shared, SharedAnswer):
            return None
        bodies = _memory.get(shared.body_key)
        if bodies is not None:
            return shared, bodies
        found = cache.get(ANSWER_BODY_KEY + key)
        if isinstance(found, tuple) and len(found) == 2 and found[0] == shared.body_key:
            _memory.put(shared.body_key, found[1])
            return shared, found[1]
        # Newer bodies replaced these between the two reads: read the newer entry.
    return None


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
    forget_snapshot_in_memory()
