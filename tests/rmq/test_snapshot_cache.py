"""The shared broker snapshot: one fetch per TTL, single flight, failures never hidden."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
import responses
from django.core.cache import cache, caches

from rmq import snapshot_cache
from rmq.client import ManagementClient
from rmq.exceptions import BrokerUnavailable
from rmq.types import BrokerSnapshot
from tests.kit.broker import SNAPSHOT_CALLS, slow_answer
from tests.kit.services import require_service

CONNECTIONS = re.compile(r".*/api/connections.*")
# Queues and their consumers: the snapshot's two other listings answer alike here.
QUEUES = re.compile(r".*/api/(queues|consumers).*")


def make_client() -> ManagementClient:
    return ManagementClient(
        "http://broker.test:15672", user="u", password="p", connect_timeout=1, read_timeout=1
    )


def test_snapshots_within_the_ttl_share_one_broker_fetch(broker, settings):
    # given a 30 s TTL
    settings.BROKER_SNAPSHOT_TTL = 30
    broker.add(responses.GET, CONNECTIONS, json=[])
    broker.add(responses.GET, QUEUES, json=[])

    # when three requests ask for a snapshot
    snapshots = [snapshot_cache.get_broker_snapshot(make_client()) for _ in range(3)]

    # then the broker was asked once (one call per listing) and all got the same picture
    assert len(broker.calls) == SNAPSHOT_CALLS
    assert snapshots[0] == snapshots[1] == snapshots[2]


def test_a_snapshot_older_than_the_ttl_is_served_while_it_is_fetched_again(
    broker, settings, fake_clock
):
    settings.BROKER_SNAPSHOT_TTL = 2
    broker.add(responses.GET, CONNECTIONS, json=[])
    broker.add(responses.GET, QUEUES, json=[])
    first = snapshot_cache.get_broker_snapshot(make_client())

    # when the TTL has passed
    fake_clock.advance(3)
    second = snapshot_cache.get_broker_snapshot(make_client())
    assert snapshot_cache.join_refresh(60)

    # then the old one was served while the broker was asked again for the next request
    assert len(broker.calls) == 2 * SNAPSHOT_CALLS
    assert second == first
    assert cache.get(snapshot_cache.SNAPSHOT_KEY).taken_at > first.taken_at


def test_a_snapshot_older_than_the_max_age_is_never_served_when_the_broker_is_down(
    broker, settings, fake_clock
):
    # given a cached snapshot
    settings.BROKER_SNAPSHOT_TTL = 2
    settings.BROKER_SNAPSHOT_MAX_AGE = 10
    broker.add(responses.GET, CONNECTIONS, json=[])
    broker.add(responses.GET, QUEUES, json=[])
    snapshot_cache.get_broker_snapshot(make_client())

    # when it is older than the max age and the broker refuses connections
    broker.reset()
    broker.add(responses.GET, CONNECTIONS, body=requests.ConnectionError("refused"))
    broker.add(responses.GET, QUEUES, body=requests.ConnectionError("refused"))
    fake_clock.advance(11)

    # then the caller gets the outage, not the old picture
    with pytest.raises(BrokerUnavailable):
        snapshot_cache.get_broker_snapshot(make_client())


def test_a_failure_is_shared_briefly_so_an_outage_does_not_hammer_the_broker(broker, settings):
    settings.BROKER_SNAPSHOT_TTL = 30
    settings.BROKER_FAILURE_TTL = 30
    broker.add(responses.GET, CONNECTIONS, body=requests.ConnectionError("refused"))
    broker.add(responses.GET, QUEUES, body=requests.ConnectionError("refused"))

    with pytest.raises(BrokerUnavailable):
        snapshot_cache.get_broker_snapshot(make_client())
    calls_after_first = len(broker.calls)
    with pytest.raises(BrokerUnavailable):
        snapshot_cache.get_broker_snapshot(make_client())

    assert len(broker.calls) == calls_after_first


def test_zero_ttl_asks_the_broker_every_time(broker, settings):
    settings.BROKER_SNAPSHOT_TTL = 0
    broker.add(responses.GET, CONNECTIONS, json=[])
    broker.add(responses.GET, QUEUES, json=[])

    snapshot_cache.get_broker_snapshot(make_client())
    snapshot_cache.get_broker_snapshot(make_client())

    assert len(broker.calls) == 2 * SNAPSHOT_CALLS


def run_concurrent_pollers(count: int) -> list[BrokerSnapshot]:
    barrier = threading.Barrier(count)

    def poll(_: int) -> BrokerSnapshot:
        barrier.wait()
        return snapshot_cache.get_broker_snapshot(make_client())

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(poll, range(count)))


def test_concurrent_pollers_cause_one_fetch_and_wait_for_it(broker, settings):
    # given a broker that takes 0.3 s to answer
    settings.BROKER_SNAPSHOT_TTL = 30
    broker.add_callback(responses.GET, CONNECTIONS, callback=slow_answer(0.3))
    broker.add_callback(responses.GET, QUEUES, callback=slow_answer(0.3))

    # when 16 pollers ask at the same moment
    snapshots = run_concurrent_pollers(16)

    # then the broker saw exactly one snapshot and everyone got it
    assert len(broker.calls) == SNAPSHOT_CALLS
    assert all(snapshot == snapshots[0] for snapshot in snapshots)


def test_each_poller_is_told_whether_it_fetched_waited_or_found_the_snapshot(broker, settings):
    # given a broker that takes 0.3 s to answer, and 8 pollers asking at once
    settings.BROKER_SNAPSHOT_TTL = 30
    broker.add_callback(responses.GET, CONNECTIONS, callback=slow_answer(0.3))
    broker.add_callback(responses.GET, QUEUES, callback=slow_answer(0.3))
    barrier = threading.Barrier(8)

    def poll(_: int) -> snapshot_cache.SnapshotWait:
        barrier.wait()
        return snapshot_cache.read_broker_snapshot(make_client())

    with ThreadPoolExecutor(max_workers=8) as pool:
        waits = list(pool.map(poll, range(8)))
    later = snapshot_cache.read_broker_snapshot(make_client())

    # then one fetched, the others waited for it (about as long), and a later one found it
    sources = sorted(wait.source for wait in waits)
    assert sources == ["fetched"] + ["waited"] * 7
    fetched = next(wait for wait in waits if wait.source == "fetched")
    assert fetched.seconds >= 0.3
    assert all(wait.seconds < fetched.seconds + 0.5 for wait in waits)
    assert later.source == "shared"
    assert later.snapshot == fetched.snapshot


def test_a_snapshot_stored_just_before_the_lock_is_taken_is_not_fetched_again(broker, settings):
    # given another worker's fresh snapshot, stored (and its lock let go) after this
    # request found the snapshot old and before it took the lock
    settings.BROKER_SNAPSHOT_TTL = 30
    broker.add(responses.GET, CONNECTIONS, json=[])
    broker.add(responses.GET, QUEUES, json=[])
    theirs = snapshot_cache.get_broker_snapshot(make_client())
    assert snapshot_cache.join_refresh(60)
    broker.reset()

    # when this request starts its refresh
    is_started = snapshot_cache.start_refresh(make_client(), prepare=None)

    # then it does not ask the broker, lets the lock go, and the stored snapshot stays
    assert not is_started
    assert len(broker.calls) == 0
    assert cache.get(snapshot_cache.LOCK_KEY) is None
    assert snapshot_cache.get_broker_snapshot(make_client()) == theirs


@pytest.fixture
def redis_cache(settings):
    """The real Redis as the shared cache, as CACHE_URL=redis://... configures it."""
    try:
        is_up = bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.RedisError:
        is_up = False
    require_service(is_up, "Redis on 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_concurrent_pollers_share_one_fetch_through_redis(broker, settings, redis_cache):
    settings.BROKER_SNAPSHOT_TTL = 30
    broker.add_callback(responses.GET, CONNECTIONS, callback=slow_answer(0.3))
    broker.add_callback(responses.GET, QUEUES, callback=slow_answer(0.3))

    snapshots = run_concurrent_pollers(16)

    assert len(broker.calls) == SNAPSHOT_CALLS
    assert all(snapshot == snapshots[0] for snapshot in snapshots)


def test_a_fetch_slower_than_the_ttl_still_serves_the_next_request(broker, settings):
    # given a 1 s TTL and a broker that takes 1.2 s to answer
    settings.BROKER_SNAPSHOT_TTL = 1
    settings.BROKER_SNAPSHOT_MAX_AGE = 1
    broker.add_callback(responses.GET, CONNECTIONS, callback=slow_answer(1.2))
    broker.add_callback(responses.GET, QUEUES, callback=slow_answer(1.2))

    # when two requests follow each other
    first = snapshot_cache.get_broker_snapshot(make_client())
    second = snapshot_cache.get_broker_snapshot(make_client())

    # then the second is served the first's snapshot: it was fresh when stored
    assert len(broker.calls) == SNAPSHOT_CALLS
    assert second == first
