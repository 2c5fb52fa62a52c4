"""A short-lived shared copy of the broker snapshot, fetched by one request at a time.

Many pollers (support dashboards, monitoring) ask for the same picture. Within the TTL
they share one snapshot through the cache (Redis when CACHE_URL is set, so every worker
shares it). When it has expired, one request takes a lock and fetches; the others wait
for its result instead of asking the broker too (single flight). A failure is shared the
same way, for a moment, so an outage is answered quickly. An expired snapshot is never
served: once the broker is unreachable beyond the TTL, callers get BrokerError.
"""

import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from rmq.client import ManagementClient
from rmq.exceptions import BrokerUnavailable
from rmq.snapshot import BrokerSnapshot, fetch_broker_snapshot

SNAPSHOT_KEY = "agentstats:broker-snapshot"
LOCK_KEY = "agentstats:broker-snapshot:lock"
WAIT_STEP_SECONDS = 0.02


@dataclass(frozen=True)
class _FailedSnapshot:
    message: str
    failed_at: float


def get_broker_snapshot(client: ManagementClient) -> BrokerSnapshot:
    """Return a snapshot at most BROKER_SNAPSHOT_TTL seconds old, asking the broker at
    most once per TTL across all workers that share the cache."""
    ttl = settings.BROKER_SNAPSHOT_TTL
    if ttl <= 0:
        return fetch_broker_snapshot(client)
    # The longest a fetch can take: both calls run concurrently, each bounded.
    fetch_bound = client.snapshot_timeout[0] + client.snapshot_timeout[1] + 1
    deadline = time.monotonic() + fetch_bound
    while True:
        cached = _read_fresh(ttl)
        if isinstance(cached, BrokerSnapshot):
            return cached
        if isinstance(cached, _FailedSnapshot):
            raise BrokerUnavailable(cached.message)
        token = uuid.uuid4().hex
        if cache.add(LOCK_KEY, token, timeout=fetch_bound):
            return _fetch_and_share(client, ttl=ttl, lock_token=token)
        if time.monotonic() >= deadline:
            # The lock holder died or hangs: fetch ourselves rather than wait longer.
            return _fetch_and_share(client, ttl=ttl, lock_token=None)
        time.sleep(WAIT_STEP_SECONDS)


def _read_fresh(ttl: float) -> BrokerSnapshot | _FailedSnapshot | None:
    cached = cache.get(SNAPSHOT_KEY)
    if isinstance(cached, BrokerSnapshot) and time.time() - cached.taken_at.timestamp() < ttl:
        return cached
    failure_ttl = min(ttl, settings.BROKER_FAILURE_TTL)
    if isinstance(cached, _FailedSnapshot) and time.time() - cached.failed_at < failure_ttl:
        return cached
    return None


def _fetch_and_share(
    client: ManagementClient, *, ttl: float, lock_token: str | None
) -> BrokerSnapshot:
    try:
        snapshot = fetch_broker_snapshot(client)
    except BrokerUnavailable as exc:
        cache.set(SNAPSHOT_KEY, _FailedSnapshot(str(exc), time.time()), timeout=ttl)
        raise
    else:
        cache.set(SNAPSHOT_KEY, snapshot, timeout=ttl)
        return snapshot
    finally:
        if lock_token is not None and cache.get(LOCK_KEY) == lock_token:
            cache.delete(LOCK_KEY)
