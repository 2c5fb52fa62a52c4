"""The observer's lease from its taking to its first beat: renewed once the event stream
is open, and again in the reconcile's write transaction, so a reconcile whose fetch
outlasted the lease writes nothing (no two writers); a host clock running ahead cannot
take a live lease (the lease is judged by the database's clock)."""

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.envelope import observer as observer_module
from marketplace.envelope.observer import ConnectionObserver
from marketplace.envelope.services import acquire_observer_lease
from marketplace.models import AgentBrokerConnection, AgentConnectionEvent, ObserverStatus
from rmq.clock import use_clock
from rmq.types import BrokerConnection, BrokerSnapshot
from tests.factories import EventSubscriptionFactory
from tests.kit.clock import FakeClock

ME, OTHER = "host-a:101:aaaa", "host-b:202:bbbb"


class OneDrainStream:
    """An event stream that logs its steps; its first drain stops the observer."""

    def __init__(self, steps: list[str], stop: threading.Event) -> None:
        self.steps, self.stop = steps, stop

    def open(self) -> None:
        self.steps.append("open")

    def drain(self, *, seconds: float) -> list:
        self.steps.append("drain")
        self.stop.set()
        return []

    def close(self) -> None:
        self.steps.append("close")


def lease_row() -> ObserverStatus:
    return ObserverStatus.objects.get(name="default")


@pytest.fixture
def lease_settings(settings):
    settings.OBSERVER_HEARTBEAT_SECONDS = 1
    settings.OBSERVER_LEASE_SECONDS = 20
    settings.OBSERVER_STANDBY_POLL_SECONDS = 1


@pytest.fixture
def steps(monkeypatch) -> list[str]:
    """Every beat the observer writes, logged among the stream's steps."""
    logged: list[str] = []
    beat = observer_module.record_observer_beat

    def logged_beat(**kwargs) -> None:
        logged.append("beat reconciled" if kwargs.get("is_reconciled") else "beat")
        beat(**kwargs)

    monkeypatch.setattr(observer_module, "record_observer_beat", logged_beat)
    return logged


def fetching(steps: list[str], snapshot: BrokerSnapshot, *, during: Callable[[], None]):
    def fetch(client) -> BrokerSnapshot:
        steps.append("fetch")
        during()
        return snapshot

    return fetch


def agent_snapshot() -> BrokerSnapshot:
    subscription = EventSubscriptionFactory.create()
    now = timezone.now()
    listed = BrokerConnection(
        name="10.0.0.1:50001 -> 10.0.1.1:15674",
        user=subscription.uuid.hex,
        vhost=subscription.user.uuid.hex,
        peer_host="10.0.0.1",
        connected_at=now - timedelta(minutes=5),
        state="running",
        recv_oct=1,
        send_oct=1,
        protocol="Web STOMP 1.2",
        node="rabbit@broker-0",
    )
    return BrokerSnapshot(connections=(listed,), queues=(), taken_at=now)


def run_one_term(steps: list[str]) -> None:
    stop = threading.Event()
    observer = ConnectionObserver(
        stream_factory=lambda: OneDrainStream(steps, stop), stop=stop, holder=ME
    )
    observer.run()


def test_the_lease_is_renewed_after_the_stream_opens_and_in_the_reconciles_writes(
    transactional_db, lease_settings, steps, monkeypatch
):
    # given the broker lists one agent connection
    snapshot = agent_snapshot()
    monkeypatch.setattr(
        observer_module, "fetch_broker_snapshot", fetching(steps, snapshot, during=lambda: None)
    )

    # when the observer takes the lease and serves one drain
    run_one_term(steps)

    # then it renewed the lease once the stream was open, before the reconcile's fetch,
    # and again (reconciled) after the fetch, before the reconcile's writes were made
    assert steps[:4] == ["open", "beat", "fetch", "beat reconciled"]
    assert AgentBrokerConnection.objects.count() == 1
    assert list(AgentConnectionEvent.objects.values_list("reason", flat=True)) == [
        "found_at_reconcile"
    ]
    assert lease_row().last_reconciled_at is not None


def test_a_reconcile_whose_lease_was_taken_during_its_fetch_writes_nothing(
    transactional_db, lease_settings, steps, monkeypatch
):
    # given the reconcile's fetch takes so long that the lease expires and OTHER takes it
    def lease_taken_by_other() -> None:
        ObserverStatus.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert acquire_observer_lease(OTHER)

    snapshot = agent_snapshot()
    monkeypatch.setattr(
        observer_module,
        "fetch_broker_snapshot",
        fetching(steps, snapshot, during=lease_taken_by_other),
    )
    stop = threading.Event()
    observer = ConnectionObserver(
        stream_factory=lambda: OneDrainStream(steps, stop), stop=stop, holder=ME
    )

    # when this observer serves its term
    observer._serve_one_term()

    # then it stepped down without writing the snapshot: OTHER is the only writer
    assert "drain" not in steps and steps[-1] == "close"
    assert AgentBrokerConnection.objects.count() == 0
    assert AgentConnectionEvent.objects.count() == 0
    row = lease_row()
    assert row.lease_holder == OTHER
    assert row.last_reconciled_at is None


def test_a_standby_whose_clock_runs_an_hour_ahead_does_not_take_a_live_lease(
    transactional_db, lease_settings, steps
):
    # given OTHER holds a live lease
    assert acquire_observer_lease(OTHER)

    # when this observer's host clock is an hour ahead and it polls
    with use_clock(FakeClock(timezone.now() + timedelta(hours=1))):
        ConnectionObserver(
            stream_factory=lambda: pytest.fail("a standby opened a stream"),
            holder=ME,
        )._serve_one_term()

    # then OTHER still holds it
    assert lease_row().lease_holder == OTHER
    assert steps == []
