"""The shared snapshot, stale-while-revalidate: served at once while a refresh runs beside
it, never older than the max age, a bounded wait when cold, failures answered at once."""

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import responses

from rmq import snapshot_cache
from rmq.client import ManagementClient
from rmq.clock import current_clock
from rmq.exceptions import BrokerUnavailable
from rmq.snapshot_cache import SnapshotSource, read_broker_snapshot
from tests.kit.paths import ROOT

CONNECTIONS = re.compile(r".*/api/connections.*")
LISTINGS = re.compile(r".*/api/(queues|consumers).*")
DEADLINE_SECONDS = 60
# An outcome bound, far below the fetch's own (connect + read timeout), not a speed target.
PROMPT_SECONDS = 5


class HeldBroker:
    """The management API behind `responses`: it answers (or refuses) once let go."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.fetches = 0
        self.is_refusing = False
        self.asked = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._guard = threading.Lock()
        mock.add_callback(responses.GET, CONNECTIONS, callback=self._answer_connections)
        mock.add_callback(responses.GET, LISTINGS, callback=self._answer)

    def hold(self) -> None:
        self._open.clear()
        self.asked.clear()

    def release(self) -> None:
        self._open.set()

    def _answer_connections(self, request: Any) -> tuple[int, dict, str]:
        with self._guard:
            self.fetches += 1
        self.asked.set()
        return self._answer(request)

    def _answer(self, request: Any) -> tuple[int, dict, str]:
        assert self._open.wait(DEADLINE_SECONDS), "the test never let the broker answer"
        if self.is_refusing:
            raise requests.ConnectionError("Connection refused")
        return (200, {"Content-Type": "application/json"}, "[]")


@pytest.fixture
def clock(snapshot_clock):
    return snapshot_clock


@pytest.fixture
def held_broker(broker) -> HeldBroker:
    return HeldBroker(broker)


@pytest.fixture(autouse=True)
def bounds(settings):
    settings.BROKER_SNAPSHOT_TTL = 2
    settings.BROKER_SNAPSHOT_MAX_AGE = 10
    settings.BROKER_FAILURE_TTL = 1
    settings.BROKER_SNAPSHOT_WAIT = DEADLINE_SECONDS


def make_client() -> ManagementClient:
    return ManagementClient(
        "http://broker.test:15672", user="u", password="p", connect_timeout=5, read_timeout=5
    )


def finish_refresh() -> None:
    assert snapshot_cache.join_refresh(DEADLINE_SECONDS), "the refresh never ended"


def test_a_snapshot_younger_than_the_ttl_is_shared_without_asking_the_broker(held_broker, clock):
    # given a snapshot fetched by a cold request
    first = read_broker_snapshot(make_client())
    finish_refresh()

    # when another request comes within the TTL
    clock.advance(1.5)
    second = read_broker_snapshot(make_client())

    # then it is served the same snapshot, and the broker was asked once
    assert (first.source, second.source) == (SnapshotSource.FETCHED, SnapshotSource.SHARED)
    assert second.snapshot == first.snapshot
    assert held_broker.fetches == 1


def test_a_stale_snapshot_is_served_at_once_while_one_refresh_runs_beside_it(held_broker, clock):
    # given a snapshot older than the TTL, and a broker that does not answer yet
    warm = read_broker_snapshot(make_client()).snapshot
    finish_refresh()
    clock.advance(3)
    held_broker.hold()

    # when two requests come
    first = read_broker_snapshot(make_client())
    assert held_broker.asked.wait(DEADLINE_SECONDS), "no refresh was started"
    second = read_broker_snapshot(make_client())

    # then both were served the stale snapshot while the broker held the refresh
    assert (first.source, second.source) == (SnapshotSource.STALE, SnapshotSource.STALE)
    assert first.snapshot == second.snapshot == warm
    assert held_broker.fetches == 2  # the cold fetch and one refresh

    # and once the broker answers, the next request is served the refreshed snapshot
    held_broker.release()
    finish_refresh()
    fresh = read_broker_snapshot(make_client())
    assert fresh.source == SnapshotSource.SHARED
    assert fresh.snapshot.taken_at > warm.taken_at


def test_a_snapshot_older_than_the_max_age_is_never_served(held_broker, clock, settings):
    # given a snapshot, then idling past the max age with a broker that does not answer yet
    settings.BROKER_SNAPSHOT_WAIT = 0.3
    read_broker_snapshot(make_client())
    finish_refresh()
    clock.advance(10.5)
    held_broker.hold()

    # when a request comes
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="not answered yet"):
        read_broker_snapshot(make_client())

    # then it was told the broker has not answered, after the wait, not the fetch
    assert time.monotonic() - started < PROMPT_SECONDS
    # and the fetch it started goes on: its snapshot serves the next request
    held_broker.release()
    finish_refresh()
    after = read_broker_snapshot(make_client())
    assert after.source == SnapshotSource.SHARED
    assert current_clock().time() - after.snapshot.taken_at.timestamp() < 1
    assert held_broker.fetches == 2


def test_a_cold_request_waits_at_most_the_wait_then_gets_the_outage(held_broker, settings):
    # given no snapshot, and a broker that does not answer
    settings.BROKER_SNAPSHOT_WAIT = 0.3
    held_broker.hold()

    # when two requests come (the second one waits for the first one's fetch)
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="not answered yet"):
            read_broker_snapshot(make_client())
        assert time.monotonic() - started < PROMPT_SECONDS

    # then one fetch was started, and its answer serves the next request
    held_broker.release()
    finish_refresh()
    assert read_broker_snapshot(make_client()).source == SnapshotSource.SHARED
    assert held_broker.fetches == 1


def test_after_a_failure_requests_get_the_outage_at_once_and_one_retry_per_failure_ttl(
    held_broker, clock
):
    # given a broker that refused the cold request's fetch
    held_broker.is_refusing = True
    with pytest.raises(BrokerUnavailable):
        read_broker_snapshot(make_client())
    finish_refresh()
    held_broker.hold()

    # when requests come within the failure TTL, then after it while the retry hangs
    for _ in range(3):
        with pytest.raises(BrokerUnavailable):
            read_broker_snapshot(make_client())
    # (a retry would still run: the broker holds its answer)
    is_idle_within_the_ttl = snapshot_cache.join_refresh(0)
    clock.advance(1.5)
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            read_broker_snapshot(make_client())
        assert time.monotonic() - started < PROMPT_SECONDS

    # then none waited for the broker, and one retry was started after the failure TTL
    assert held_broker.asked.wait(DEADLINE_SECONDS)
    assert is_idle_within_the_ttl
    assert held_broker.fetches == 2
    held_broker.release()
    finish_refresh()


def test_a_failure_newer_than_the_snapshot_is_answered_instead_of_the_snapshot(held_broker, clock):
    # given a snapshot older than the TTL whose refresh was refused
    read_broker_snapshot(make_client())
    finish_refresh()
    clock.advance(3)
    held_broker.is_refusing = True
    assert read_broker_snapshot(make_client()).source == SnapshotSource.STALE
    finish_refresh()

    # when a request comes, then it is told of the outage, not shown the older picture
    with pytest.raises(BrokerUnavailable):
        read_broker_snapshot(make_client())


def test_the_first_success_after_an_outage_is_used_by_the_next_request(held_broker, clock):
    # given an outage
    held_broker.is_refusing = True
    with pytest.raises(BrokerUnavailable):
        read_broker_snapshot(make_client())
    finish_refresh()

    # when the broker is back and a request after the failure TTL starts the retry
    held_broker.is_refusing = False
    clock.advance(1.5)
    with pytest.raises(BrokerUnavailable):
        read_broker_snapshot(make_client())
    finish_refresh()

    # then the next request is served the retry's snapshot
    after = read_broker_snapshot(make_client())
    assert after.source == SnapshotSource.SHARED
    assert held_broker.fetches == 2


def test_the_broker_is_not_asked_while_nobody_asks(held_broker, clock):
    # given a snapshot
    read_broker_snapshot(make_client())
    finish_refresh()

    # when time passes beyond the TTL and the max age without a request
    clock.advance(30)
    time.sleep(0.5)

    # then no refresh runs and the broker was asked once
    assert not any(t.name == "rmq-snapshot-refresh" for t in threading.enumerate())
    assert held_broker.fetches == 1


def test_concurrent_pollers_of_a_stale_snapshot_cause_one_refresh(held_broker, clock):
    # given a stale snapshot and a broker that holds its answer
    read_broker_snapshot(make_client())
    finish_refresh()
    clock.advance(3)
    held_broker.hold()
    barrier = threading.Barrier(16)

    def poll(_: int) -> SnapshotSource:
        barrier.wait(timeout=DEADLINE_SECONDS)
        return read_broker_snapshot(make_client()).source

    # when 16 pollers ask at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        sources = list(pool.map(poll, range(16)))

    # then every one was served the stale snapshot, and one refresh asked the broker
    held_broker.release()
    finish_refresh()
    assert sources == [SnapshotSource.STALE] * 16
    assert held_broker.fetches == 2


def test_another_process_does_not_refresh_while_one_holds_the_lock(held_broker, clock, monkeypatch):
    # given a stale snapshot whose refresh this process runs, the broker holding its answer
    read_broker_snapshot(make_client())
    finish_refresh()
    clock.advance(3)
    held_broker.hold()
    read_broker_snapshot(make_client())
    assert held_broker.asked.wait(DEADLINE_SECONDS)
    ours = snapshot_cache._refresh_thread

    # when a second process, sharing the cache but not this process's thread, is asked
    monkeypatch.setattr(snapshot_cache, "_refresh_thread", None)
    theirs = read_broker_snapshot(make_client())

    # then it serves the stale snapshot without starting a refresh of its own
    assert theirs.source == SnapshotSource.STALE
    assert snapshot_cache._refresh_thread is None
    held_broker.release()
    assert ours is not None
    ours.join(DEADLINE_SECONDS)
    assert held_broker.fetches == 2


def test_a_ttl_above_the_max_age_is_refused_at_start_up():
    # when the settings are loaded with a TTL longer than the max age
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            "DJANGO_SETTINGS_MODULE": "agentstats.settings",
            "SECRET_KEY": "x",
            "DATABASE_URL": "sqlite:///:memory:",
            "BROKER_SNAPSHOT_TTL": "20",
            "BROKER_SNAPSHOT_MAX_AGE": "10",
        },
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )

    # then they are refused, naming both settings
    assert result.returncode != 0
    assert "BROKER_SNAPSHOT_TTL must not exceed BROKER_SNAPSHOT_MAX_AGE" in result.stderr
