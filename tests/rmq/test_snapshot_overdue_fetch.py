"""A hung broker: once a fetch has been in flight for longer than a request's wait, cold
requests are answered 503 at once instead of each waiting out BROKER_SNAPSHOT_WAIT."""

import time

import pytest

from rmq import snapshot_cache
from rmq.exceptions import BrokerUnavailable
from rmq.snapshot_cache import SnapshotSource, read_broker_snapshot
from tests.rmq.test_snapshot_stale_while_revalidate import (
    DEADLINE_SECONDS,
    HeldBroker,
    finish_refresh,
    make_client,
)

WAIT_SECONDS = 0.8


@pytest.fixture
def held_broker(broker) -> HeldBroker:
    return HeldBroker(broker)


@pytest.fixture(autouse=True)
def bounds(settings):
    settings.BROKER_SNAPSHOT_TTL = 2
    settings.BROKER_SNAPSHOT_MAX_AGE = 10
    settings.BROKER_FAILURE_TTL = 1
    settings.BROKER_SNAPSHOT_WAIT = WAIT_SECONDS


def test_a_cold_request_after_the_fetch_outlasted_the_wait_is_answered_at_once(
    held_broker, fake_clock, monkeypatch
):
    # given a cold start whose fetch the broker holds, past a request's wait
    held_broker.hold()
    with pytest.raises(BrokerUnavailable):
        read_broker_snapshot(make_client())
    assert held_broker.asked.wait(DEADLINE_SECONDS)
    fake_clock.advance(WAIT_SECONDS + 0.1)
    waits: list[float] = []
    monkeypatch.setattr(snapshot_cache.time, "sleep", waits.append)

    # when more requests come
    for _ in range(3):
        with pytest.raises(BrokerUnavailable, match="not answered yet"):
            read_broker_snapshot(make_client())

    # then none of them waited, and the broker was asked once
    assert waits == []
    assert held_broker.fetches == 1
    monkeypatch.setattr(snapshot_cache.time, "sleep", time.sleep)
    held_broker.release()
    finish_refresh()


def test_a_request_arriving_while_the_fetch_is_young_waits_for_it(
    held_broker, fake_clock, monkeypatch, settings
):
    # given a fetch another request has just started (no time passes on the fake clock)
    settings.BROKER_SNAPSHOT_WAIT = DEADLINE_SECONDS
    held_broker.hold()
    assert snapshot_cache.start_refresh(make_client(), prepare=None)
    assert held_broker.asked.wait(DEADLINE_SECONDS)
    real_sleep, waits = time.sleep, []

    def answer_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        held_broker.release()
        real_sleep(seconds)

    monkeypatch.setattr(snapshot_cache.time, "sleep", answer_while_waiting)

    # when a cold request comes
    served = read_broker_snapshot(make_client())

    # then it waited for that fetch and was served its snapshot
    assert served.source == SnapshotSource.WAITED
    assert waits
    assert held_broker.fetches == 1
    finish_refresh()
