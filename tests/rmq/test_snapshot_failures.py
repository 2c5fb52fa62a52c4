"""Any broker failure is shared for BROKER_FAILURE_TTL: a refusal, and garbage too.

An answer the snapshot cannot use is as much a failure as a refused connection: pollers
that wait for it, or come just after it, must not each ask the broker in turn.
"""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses

from rmq import snapshot_cache
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError, BrokerResponseError, BrokerUnavailable
from tests.kit.broker import SNAPSHOT_CALLS

CONNECTIONS = re.compile(r".*/api/connections.*")
QUEUES = re.compile(r".*/api/(queues|consumers).*")
POLLERS = 8
DEADLINE_SECONDS = 60
GARBAGE = "<html><body>502 Bad Gateway, but with status 200</body></html>"


def make_client() -> ManagementClient:
    return ManagementClient(
        "http://broker.test:15672", user="u", password="p", connect_timeout=30, read_timeout=30
    )


@pytest.fixture
def shared_failures(settings):
    settings.BROKER_SNAPSHOT_TTL = 30
    settings.BROKER_FAILURE_TTL = 30


def fetches(broker: responses.RequestsMock) -> int:
    """How many snapshots the broker was asked for."""
    return len([call for call in broker.calls if "/api/connections" in str(call.request.url)])


class WaitNotingWhoWaits:
    """The cold requests' wait for a fetch, telling when every poller waits."""

    def __init__(self, *, waiters: int) -> None:
        self.waiters = waiters
        self.everyone_waits = threading.Event()
        self._count = 0
        self._guard = threading.Lock()
        self._wait = snapshot_cache._wait_for_fetch

    def __call__(self, deadline: float):
        with self._guard:
            self._count += 1
            if self._count >= self.waiters:
                self.everyone_waits.set()
        return self._wait(deadline)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"body": GARBAGE}, BrokerResponseError),
        ({"json": {"error": "not a list"}}, BrokerResponseError),
        ({"body": requests.ConnectionError("refused")}, BrokerUnavailable),
    ],
    ids=["not-json", "wrong-shape", "refused"],
)
def test_requests_after_a_failure_within_the_failure_ttl_cause_one_fetch(
    broker, shared_failures, answer, error
):
    # given a broker that fails its snapshot
    broker.add(responses.GET, CONNECTIONS, **answer)
    broker.add(responses.GET, QUEUES, json=[])

    # when several requests follow each other within the failure TTL
    for _ in range(POLLERS):
        with pytest.raises(error):
            snapshot_cache.get_broker_snapshot(make_client())

    # then the broker was asked once, and everyone got the same kind of failure
    assert fetches(broker) == 1


def test_pollers_waiting_for_a_fetch_that_gets_garbage_share_its_failure(
    broker, shared_failures, monkeypatch
):
    # given a broker answering garbage, held until every poller waits for the fetch
    waits = WaitNotingWhoWaits(waiters=POLLERS)

    def garbage_once_everyone_waits(request):
        assert waits.everyone_waits.wait(DEADLINE_SECONDS), "the pollers never waited"
        return (200, {"Content-Type": "application/json"}, GARBAGE)

    monkeypatch.setattr(snapshot_cache, "_wait_for_fetch", waits)
    broker.add_callback(responses.GET, CONNECTIONS, callback=garbage_once_everyone_waits)
    broker.add(responses.GET, QUEUES, json=[])
    barrier = threading.Barrier(POLLERS)

    def poll(_: int) -> type[BrokerError] | None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        try:
            snapshot_cache.get_broker_snapshot(make_client())
        except BrokerError as exc:
            return type(exc)
        return None

    # when they all ask at once
    with ThreadPoolExecutor(max_workers=POLLERS) as pool:
        outcomes = list(pool.map(poll, range(POLLERS)))

    # then one fetch served them all, and each was told the broker's answer was unusable
    assert fetches(broker) == 1
    assert len(broker.calls) == SNAPSHOT_CALLS
    assert outcomes == [BrokerResponseError] * POLLERS
