"""The shared broker snapshot, served stale-while-revalidate: no request waits once warm.

Pollers (support dashboards, monitoring) share one snapshot through the cache (Redis when
CACHE_URL is set, so every worker and replica shares it). The rules, in order:

- a failure newer than the newest snapshot (and younger than BROKER_SNAPSHOT_MAX_AGE) is
  raised at once; a retry runs beside the request at most once per BROKER_FAILURE_TTL;
- a snapshot younger than BROKER_SNAPSHOT_TTL is served; one younger than
  BROKER_SNAPSHOT_MAX_AGE is served too, while a refresh runs beside the request;
- otherwise (cold start, after idling) the request waits at most BROKER_SNAPSHOT_WAIT for
  the fetch, its own or another process's, then gets BrokerUnavailable while the fetch
  goes on; its result serves the next request. A fetch in flight for longer than that
  already (a hung broker) answers such requests at once.

A refresh runs in a daemon thread, at most one per process, and only while the cache lock
(`cache.add`, expiring after the fetch's bound) is ours: one fetch at a time across every
process sharing the cache. It publishes the snapshot, lets go of the lock, then runs the
caller's `prepare` (the stats build their shared answers there). Refreshes are started by
requests only: nobody asking, no broker calls. BROKER_SNAPSHOT_TTL=0 fetches in the
request, every time.

The snapshot is two cache entries: a small head (its id and time) that every request
reads, and the snapshot itself under one fixed key, read only by a request that builds
from it and then kept in this process's memory by id: at 10,000 agents the snapshot is
tens of thousands of objects, too many to unpickle per request.
"""

import contextvars
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NoReturn

from django.conf import settings
from django.core.cache import cache

from rmq.client import ManagementClient
from rmq.clock import current_clock
from rmq.exceptions import BrokerError, BrokerUnavailable
from rmq.snapshot import fetch_broker_snapshot
from rmq.types import BrokerSnapshot

SNAPSHOT_KEY = "agentstats:broker-snapshot"
SNAPSHOT_BODY_KEY = "agentstats:broker-snapshot:body"
FAILURE_KEY = "agentstats:broker-snapshot:failure"
LOCK_KEY = "agentstats:broker-snapshot:lock"
WAIT_STEP_SECONDS = 0.05
NOT_YET_DETAIL = "The broker has not answered yet; try again shortly."

logger = logging.getLogger(__name__)

# Called by the refresh thread with the new snapshot once it is published and the lock is
# let go of (so a long build never holds up the next fetch), to build what is shared from
# it (the stats answers); until that is there, requests serve the previous one.
PrepareSnapshot = Callable[[BrokerSnapshot], None]


@dataclass(frozen=True)
class _FailedSnapshot:
    message: str
    failed_at: float
    # The failure's class, raised again to those who share it (a refusal, or an answer
    # that could not be used).
    error: type[BrokerError] = BrokerUnavailable

    def reraise(self) -> NoReturn:
        raise self.error(self.message)


class SnapshotSource(StrEnum):
    """How a request got its snapshot."""

    SHARED = "shared"  # a snapshot younger than the TTL was in the cache
    STALE = "stale"  # older than the TTL, within the maximum age: served while refreshing
    FETCHED = "fetched"  # none could be served; it started the fetch and waited for it
    WAITED = "waited"  # none could be served; it waited for another request's fetch


@dataclass(frozen=True)
class SnapshotHead:
    """What every request reads of the shared snapshot: which one it is and when taken."""

    id: str
    taken_at: datetime


@dataclass(frozen=True)
class SnapshotWait:
    """A snapshot (loaded when first used) with how it was got and how long the caller
    spent getting it."""

    head: SnapshotHead
    source: SnapshotSource
    seconds: float
    # Set when this request fetched the snapshot itself (BROKER_SNAPSHOT_TTL=0).
    fetched: BrokerSnapshot | None = None

    @property
    def taken_at(self) -> datetime:
        return self.head.taken_at

    @property
    def snapshot(self) -> BrokerSnapshot:
        """The snapshot itself; raises BrokerUnavailable if the cache lost it."""
        return self.fetched if self.fetched is not None else load_snapshot(self.head)


def get_broker_snapshot(client: ManagementClient) -> BrokerSnapshot:
    """Return a snapshot at most BROKER_SNAPSHOT_MAX_AGE seconds old (see the module)."""
    return read_broker_snapshot(client).snapshot


def read_broker_snapshot(
    client: ManagementClient,
    *,
    prepare: PrepareSnapshot | None = None,
    wait_seconds: float | None = None,
) -> SnapshotWait:
    """Serve the shared snapshot by the module's rules; raise BrokerError for an outage.

    `prepare` runs in a refresh this call starts beside a stale snapshot, once the new
    snapshot is published. `wait_seconds` bounds the wait when none can be served
    (default BROKER_SNAPSHOT_WAIT).
    """
    started = time.monotonic()
    if settings.BROKER_SNAPSHOT_TTL <= 0:
        fetched = fetch_broker_snapshot(client)
        head = SnapshotHead(uuid.uuid4().hex, fetched.taken_at)
        return SnapshotWait(head, SnapshotSource.FETCHED, time.monotonic() - started, fetched)
    snapshot, failure = _read_shared()
    now = current_clock().time()
    if failure is not None:
        if now - failure.failed_at >= settings.BROKER_FAILURE_TTL:
            start_refresh(client, prepare=None)
        failure.reraise()
    if snapshot is not None:
        age = now - snapshot.taken_at.timestamp()
        if age < settings.BROKER_SNAPSHOT_TTL:
            return SnapshotWait(snapshot, SnapshotSource.SHARED, time.monotonic() - started)
        start_refresh(client, prepare=prepare)
        return SnapshotWait(snapshot, SnapshotSource.STALE, time.monotonic() - started)
    # Nothing to serve: the waiting request builds its own answer from what arrives.
    is_ours = start_refresh(client, prepare=None)
    wait = settings.BROKER_SNAPSHOT_WAIT if wait_seconds is None else wait_seconds
    if not is_ours and _is_fetch_overdue(wait):
        # A hung broker: the fetch in flight already outlasted a request's wait.
        raise BrokerUnavailable(NOT_YET_DETAIL)
    source = SnapshotSource.FETCHED if is_ours else SnapshotSource.WAITED
    return SnapshotWait(_wait_for_fetch(started + wait), source, time.monotonic() - started)


def start_refresh(client: ManagementClient, *, prepare: PrepareSnapshot | None) -> bool:
    """Fetch a snapshot in a background thread unless one is already being fetched (in
    this process or, through the cache lock, in another); whether this call started it."""
    global _refresh_thread
    with _refresh_guard:
        if _refresh_thread is not None and _refresh_thread.is_alive():
            return False
        token = uuid.uuid4().hex
        held = (token, current_clock().time())
        if not cache.add(LOCK_KEY, held, timeout=math.ceil(fetch_bound(client))):
            return False
        if _is_just_refreshed():
            # Another process published (and let go of the lock) since the caller looked.
            _release_lock(token)
            return False
        # In a copy of the request's context: its log lines carry the request id, and the
        # request log's call listener hears the calls made for a request that waits.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run,
            args=(_refresh, client, token, prepare),
            name="rmq-snapshot-refresh",
            daemon=True,
        )
        _refresh_thread = thread
        thread.start()
        return True


def join_refresh(timeout: float) -> bool:
    """Wait for this process's refresh, if any, to end; whether none is running."""
    thread = _refresh_thread
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def fetch_bound(client: ManagementClient) -> float:
    """The longest a fetch takes: its calls run concurrently, each bounded over all nodes
    (one node's budget, plus a next node's allowance when one failed)."""
    return client.call_bound(client.snapshot_timeout) + 1


_refresh_guard = threading.Lock()
_refresh_thread: threading.Thread | None = None


def load_snapshot(head: SnapshotHead) -> BrokerSnapshot:
    """The snapshot `head` names (or a newer one): from this process's memory, else from
    the cache; BrokerUnavailable when the cache no longer holds it."""
    remembered = _memo
    if remembered is not None and remembered[0] == head.id:
        return remembered[1]
    found = cache.get(SNAPSHOT_BODY_KEY)
    if (
        isinstance(found, tuple)
        and len(found) == 2
        and isinstance(found[1], BrokerSnapshot)
        and found[1].taken_at >= head.taken_at
    ):
        _remember(found[0], found[1])
        return found[1]
    raise BrokerUnavailable(NOT_YET_DETAIL)


def shared_snapshot_head() -> SnapshotHead | None:
    """The shared snapshot's head if one younger than the max age is published and no
    failure is newer (it never asks the broker)."""
    head, failure = _read_shared()
    return head if failure is None else None


_memo_guard = threading.Lock()
_memo: tuple[str, BrokerSnapshot] | None = None


def _remember(snapshot_id: str, snapshot: BrokerSnapshot) -> SnapshotHead:
    global _memo
    with _memo_guard:
        if _memo is None or _memo[1].taken_at <= snapshot.taken_at:
            _memo = (snapshot_id, snapshot)
    return SnapshotHead(snapshot_id, snapshot.taken_at)


def forget_snapshot_in_memory() -> None:
    """Drop the snapshot this process keeps (tests: nothing leaks between them)."""
    global _memo
    with _memo_guard:
        _memo = None


def _read_shared() -> tuple[SnapshotHead | None, _FailedSnapshot | None]:
    """The newest snapshot's head and a failure newer than it, each if younger than the
    max age."""
    found = cache.get_many([SNAPSHOT_KEY, FAILURE_KEY])
    now, max_age = current_clock().time(), settings.BROKER_SNAPSHOT_MAX_AGE
    snapshot, failure = found.get(SNAPSHOT_KEY), found.get(FAILURE_KEY)
    if not isinstance(snapshot, SnapshotHead) or now - snapshot.taken_at.timestamp() >= max_age:
        snapshot = None
    if not isinstance(failure, _FailedSnapshot) or now - failure.failed_at >= max_age:
        failure = None
    return snapshot, failure


def _is_just_refreshed() -> bool:
    snapshot, failure = _read_shared()
    now = current_clock().time()
    if failure is not None:
        return now - failure.failed_at < settings.BROKER_FAILURE_TTL
    return (
        snapshot is not None and now - snapshot.taken_at.timestamp() < settings.BROKER_SNAPSHOT_TTL
    )


def _wait_for_fetch(deadline: float) -> SnapshotHead:
    while True:
        snapshot, failure = _read_shared()
        if failure is not None:
            failure.reraise()
        if snapshot is not None:
            return snapshot
        if time.monotonic() >= deadline:
            # The fetch goes on; its snapshot (or failure) serves the next request.
            raise BrokerUnavailable(NOT_YET_DETAIL)
        time.sleep(WAIT_STEP_SECONDS)


def _refresh(client: ManagementClient, token: str, prepare: PrepareSnapshot | None) -> None:
    # A daemon thread's exception would only reach stderr: every one is logged here.
    snapshot = None
    try:
        snapshot = _fetch_and_publish(client)
    except Exception:
        logger.exception("broker snapshot refresh failed")
    finally:
        _release_lock(token)
    if snapshot is not None and prepare is not None:
        try:
            prepare(snapshot)
        except Exception:
            # What is built from the snapshot is an optimisation: requests build it
            # themselves.
            logger.exception("preparing from the broker snapshot failed")


def _fetch_and_publish(client: ManagementClient) -> BrokerSnapshot | None:
    keep_seconds = math.ceil(settings.BROKER_SNAPSHOT_MAX_AGE)
    try:
        snapshot = fetch_broker_snapshot(client)
    except BrokerError as exc:
        # Garbage shares like a refusal: asking again at once would only get more of it.
        failure = _FailedSnapshot(str(exc), current_clock().time(), type(exc))
        cache.set(FAILURE_KEY, failure, timeout=keep_seconds)
        logger.warning("broker snapshot failed: %s", exc)
        return None
    head = _remember(uuid.uuid4().hex, snapshot)
    # The snapshot before its head: a request that reads the head finds what it names.
    cache.set(SNAPSHOT_BODY_KEY, (head.id, snapshot), timeout=keep_seconds)
    cache.set(SNAPSHOT_KEY, head, timeout=keep_seconds)
    # A success ends the outage: the next request is served this snapshot.
    cache.delete(FAILURE_KEY)
    return snapshot


def _release_lock(token: str) -> None:
    held = cache.get(LOCK_KEY)
    if isinstance(held, tuple) and held[0] == token:
        cache.delete(LOCK_KEY)


def _is_fetch_overdue(wait: float) -> bool:
    """Whether a fetch (of any process) has been asking the broker for longer than `wait`:
    a request with nothing to serve is then answered at once rather than waiting too."""
    held = cache.get(LOCK_KEY)
    return isinstance(held, tuple) and current_clock().time() - held[1] >= wait
