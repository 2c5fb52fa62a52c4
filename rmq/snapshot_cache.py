"""A short-lived shared copy of the broker snapshot, fetched by one request at a time.

Many pollers (support dashboards, monitoring) ask for the same picture. Within the TTL
they share one snapshot through the cache (Redis when CACHE_URL is set, so every worker
shares it). When it has expired, one request takes a lock and fetches; the others wait
for its result instead of asking the broker too (single flight). A failure is shared the
same way, for a moment (BROKER_FAILURE_TTL), whether the broker refused or answered
something unusable, so an outage is answered quickly. An expired snapshot is never
served: once the broker is unreachable beyond the TTL, callers get BrokerError.
"""

import time
import uuid
from dataclasses import dataclass
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
LOCK_KEY = "agentstats:broker-snapshot:lock"
WAIT_STEP_SECONDS = 0.02


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

    FETCHED = "fetched"  # it asked the broker itself
    WAITED = "waited"  # another request was asking; it waited for that answer
    SHARED = "shared"  # a fresh snapshot was in the cache


@dataclass(frozen=True)
class SnapshotWait:
    """A snapshot with how it was got and how long the caller spent getting it."""

    snapshot: BrokerSnapshot
    source: SnapshotSource
    seconds: float


def get_broker_snapshot(client: ManagementClient) -> BrokerSnapshot:
    """Return a snapshot at most BROKER_SNAPSHOT_TTL seconds old, asking the broker at
    most once per TTL across all workers that share the cache."""
    return wait_for_broker_snapshot(client).snapshot


def wait_for_broker_snapshot(client: ManagementClient) -> SnapshotWait:
    """get_broker_snapshot, telling how the snapshot was got and how long it took."""
    started = time.monotonic()
    ttl = settings.BROKER_SNAPSHOT_TTL
    if ttl <= 0:
        snapshot = fetch_broker_snapshot(client)
        return SnapshotWait(snapshot, SnapshotSource.FETCHED, time.monotonic() - started)
    # The longest a fetch can take: its calls run concurrently, each bounded.
    fetch_bound = client.snapshot_timeout[0] + client.snapshot_timeout[1] + 1
    deadline = started + fetch_bound
    source = SnapshotSource.SHARED
    while True:
        cached = _read_fresh(ttl)
        if isinstance(cached, BrokerSnapshot):
            return SnapshotWait(cached, source, time.monotonic() - started)
        if isinstance(cached, _FailedSnapshot):
            cached.reraise()
        token = uuid.uuid4().hex
        if cache.add(LOCK_KEY, token, timeout=fetch_bound):
            # The previous holder may have stored its snapshot and let go of the lock
            # between our read above and taking it: look again before asking the broker.
            stored = _read_fresh(ttl)
            if stored is not None:
                _release_lock(token)
                if isinstance(stored, _FailedSnapshot):
                    stored.reraise()
                return SnapshotWait(stored, SnapshotSource.WAITED, time.monotonic() - started)
            snapshot = _fetch_and_share(client, ttl=ttl, lock_token=token)
            return SnapshotWait(snapshot, SnapshotSource.FETCHED, time.monotonic() - started)
        if time.monotonic() >= deadline:
            # The lock holder died or hangs: fetch ourselves rather than wait longer.
            snapshot = _fetch_and_share(client, ttl=ttl, lock_token=None)
            return SnapshotWait(snapshot, SnapshotSource.FETCHED, time.monotonic() - started)
        source = SnapshotSource.WAITED
        time.sleep(WAIT_STEP_SECONDS)


def _read_fresh(ttl: float) -> BrokerSnapshot | _FailedSnapshot | None:
    cached = cache.get(SNAPSHOT_KEY)
    now = current_clock().time()
    if isinstance(cached, BrokerSnapshot) and now - cached.taken_at.timestamp() < ttl:
        return cached
    failure_ttl = min(ttl, settings.BROKER_FAILURE_TTL)
    if isinstance(cached, _FailedSnapshot) and now - cached.failed_at < failure_ttl:
        return cached
    return None


def _fetch_and_share(
    client: ManagementClient, *, ttl: float, lock_token: str | None
) -> BrokerSnapshot:
    try:
        snapshot = fetch_broker_snapshot(client)
    except BrokerError as exc:
        # Garbage shares like a refusal: asking again at once would only get more of it.
        cache.set(
            SNAPSHOT_KEY,
            _FailedSnapshot(str(exc), current_clock().time(), type(exc)),
            timeout=ttl,
        )
        raise
    else:
        cache.set(SNAPSHOT_KEY, snapshot, timeout=ttl)
        return snapshot
    finally:
        if lock_token is not None:
            _release_lock(lock_token)


def _release_lock(token: str) -> None:
    if cache.get(LOCK_KEY) == token:
        cache.delete(LOCK_KEY)
