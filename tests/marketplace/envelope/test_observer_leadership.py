"""The observer process's leadership: it observes only while it holds the lease, steps
down when a renewal fails, renews through a broker backoff, and gives the lease up on a
clean stop. The app's time is fake: waiting on the stop event moves the clock at once; the
lease's expiry is the database's, so a test expires a lease by writing its end."""

import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from marketplace.envelope import observer as observer_module
from marketplace.envelope.observer import ConnectionObserver, new_lease_holder
from marketplace.envelope.services import acquire_observer_lease
from marketplace.models import ObserverStatus
from rmq.events import ConnectionClosed
from rmq.exceptions import BrokerUnavailable
from tests.kit.clock import FakeClock

HEARTBEAT, LEASE, POLL = 5, 20, 5
ME, OTHER = "host-a:101:aaaa", "host-b:202:bbbb"


class SteppingStop(threading.Event):
    """The observer's stop event: a wait passes fake time at once, and the event is set
    once `stop_after` seconds of fake time have passed (or when a test sets it)."""

    def __init__(
        self, clock: FakeClock, *, stop_after: float, expire_lease_after: float | None = None
    ) -> None:
        super().__init__()
        self.clock = clock
        self.deadline = clock.current + timedelta(seconds=stop_after)
        # When the lease (by then unrenewed) reaches its end: the database's clock does not
        # follow the fake one, so the test writes the end.
        self.expiry = (
            None
            if expire_lease_after is None
            else clock.current + timedelta(seconds=expire_lease_after)
        )

    def wait(self, timeout: float | None = None) -> bool:
        if not self.is_set():
            self.clock.advance(timeout or 0)
            if self.expiry is not None and self.clock.current >= self.expiry:
                self.expiry = None
                expire_lease()
            if self.clock.current >= self.deadline:
                self.set()
        return self.is_set()


class FakeStream:
    """An event stream whose drain passes fake time and then does what the test says."""

    def __init__(self, clock: FakeClock, on_drain: Callable[[int], list]) -> None:
        self.clock = clock
        self.on_drain = on_drain
        self.drains = 0
        self.is_open = False

    def open(self) -> None:
        self.is_open = True

    def drain(self, *, seconds: float) -> list:
        self.drains += 1
        self.clock.advance(seconds)
        return self.on_drain(self.drains)

    def close(self) -> None:
        self.is_open = False


class Streams:
    """The observer's stream factory: every stream it opened, in order."""

    def __init__(self, make: Callable[[], FakeStream]) -> None:
        self.make = make
        self.opened: list[FakeStream] = []

    def __call__(self) -> FakeStream:
        stream = self.make()
        self.opened.append(stream)
        return stream


@pytest.fixture
def world(transactional_db, settings, fake_clock, monkeypatch):
    """Lease settings, and the reconcile and event writes replaced by recorders. The
    database is not wrapped in a transaction: the observer closes a connection left
    outside autocommit, as it must between terms."""
    settings.OBSERVER_HEARTBEAT_SECONDS = HEARTBEAT
    settings.OBSERVER_LEASE_SECONDS = LEASE
    settings.OBSERVER_STANDBY_POLL_SECONDS = POLL
    written: dict[str, list] = {"reconciles": [], "events": []}

    def reconcile(*, before_writes: Callable[[], None] | None = None) -> int:
        if before_writes is not None:
            before_writes()
        written["reconciles"].append(fake_clock.now())
        return 0

    monkeypatch.setattr(observer_module, "reconcile_connections", reconcile)
    monkeypatch.setattr(observer_module, "apply_connection_event", written["events"].append)
    return fake_clock, written


def lease_row() -> ObserverStatus:
    return ObserverStatus.objects.get(name="default")


def expire_lease() -> None:
    ObserverStatus.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def closed_event(name: str, at: datetime) -> ConnectionClosed:
    return ConnectionClosed(name=name, node="rabbit@a", closed_at=at)


def test_a_lease_holder_name_is_host_pid_and_a_random_suffix():
    first, second = new_lease_holder(), new_lease_holder()

    host, pid, suffix = first.split(":")
    assert host and pid.isdigit() and len(suffix) == 8
    assert first != second


def test_a_standby_opens_no_stream_while_another_holds_the_lease(world):
    clock, written = world
    # given OTHER holds the lease
    assert acquire_observer_lease(OTHER)
    streams = Streams(lambda: FakeStream(clock, lambda n: []))

    # when this observer runs for less than the lease
    stop = SteppingStop(clock, stop_after=LEASE - POLL)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it never observed, and OTHER's lease is untouched by its stop
    assert streams.opened == [] and written["reconciles"] == []
    assert lease_row().lease_holder == OTHER


def test_a_standby_takes_an_expired_lease_at_its_next_poll_and_reconciles_first(world):
    clock, written = world
    # given OTHER took the lease and was killed (it never beats again)
    killed_at = clock.now()
    assert acquire_observer_lease(OTHER)
    events = [closed_event("conn-1", killed_at)]

    def first_drain(n: int) -> list:
        stop.set()
        return events

    streams = Streams(lambda: FakeStream(clock, first_drain))

    # when this observer polls as a standby, and the lease ends LEASE seconds on
    stop = SteppingStop(clock, stop_after=10 * LEASE, expire_lease_after=LEASE)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it took the lease within one poll after it expired, reconciled, then applied
    assert len(written["reconciles"]) == 1
    expired_at = killed_at + timedelta(seconds=LEASE)
    assert expired_at <= written["reconciles"][0] <= expired_at + timedelta(seconds=POLL)
    assert written["events"] == events
    assert [stream.is_open for stream in streams.opened] == [False]


def test_the_active_observer_steps_down_when_another_took_its_lease(world):
    clock, written = world
    taken: list[bool] = []

    def drain(n: int) -> list:
        if n == 1:
            return [closed_event("before", clock.now())]
        # the database was slow: the lease expired and OTHER took it while this waited
        expire_lease()
        taken.append(acquire_observer_lease(OTHER))
        return [closed_event("after", clock.now())]

    streams = Streams(lambda: FakeStream(clock, drain))

    # when this observer leads, then loses the lease, then polls as a standby
    stop = SteppingStop(clock, stop_after=4 * POLL)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it closed its stream at once and wrote nothing of what came after the loss
    assert taken == [True]
    assert len(streams.opened) == 1 and not streams.opened[0].is_open
    assert [event.name for event in written["events"]] == ["before"]
    # and it stayed a standby: OTHER holds the lease, untouched by this one's stop
    assert lease_row().lease_holder == OTHER


def test_a_database_error_on_renewal_steps_down_and_the_next_poll_takes_a_new_term(
    world, monkeypatch
):
    clock, written = world
    beat = observer_module.record_observer_beat
    # the renewal after the stream opened passes, the first drain's fails
    failures = iter([None, OperationalError("server closed the connection unexpectedly")])

    def flaky_beat(**kwargs) -> None:
        if not kwargs.get("is_reconciled"):
            failure = next(failures, None)
            if isinstance(failure, OperationalError):
                raise failure
        beat(**kwargs)

    monkeypatch.setattr(observer_module, "record_observer_beat", flaky_beat)

    def drain(n: int) -> list:
        if len(streams.opened) == 2:
            stop.set()
        return []

    streams = Streams(lambda: FakeStream(clock, drain))

    # when its first renewal fails on the database
    stop = SteppingStop(clock, stop_after=10 * LEASE)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it closed that stream, stood by one poll, took a new term and reconciled again
    assert [stream.is_open for stream in streams.opened] == [False, False]
    assert len(written["reconciles"]) == 2
    assert written["reconciles"][1] - written["reconciles"][0] >= timedelta(seconds=POLL)
    # and its clean stop gave the lease up
    assert lease_row().lease_holder == ""


def test_the_active_observer_renews_its_lease_through_a_broker_backoff(world, monkeypatch):
    clock, _ = world
    beats: list[tuple[datetime, bool]] = []
    beat = observer_module.record_observer_beat

    def recorded_beat(**kwargs) -> None:
        beats.append((kwargs["at"], kwargs["is_broker_available"]))
        beat(**kwargs)

    monkeypatch.setattr(observer_module, "record_observer_beat", recorded_beat)

    class RefusingStream(FakeStream):
        def open(self) -> None:
            raise BrokerUnavailable("connection refused")

    streams = Streams(lambda: RefusingStream(clock, lambda n: []))

    # when the broker refuses for long enough that the backoff outgrows the lease
    stop = SteppingStop(clock, stop_after=6 * observer_module.MAX_BACKOFF_SECONDS)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it kept beating "broker unavailable" at least once per heartbeat, so its lease
    # never lapsed although it waited up to MAX_BACKOFF_SECONDS between attempts
    assert observer_module.MAX_BACKOFF_SECONDS > LEASE
    assert len(streams.opened) >= 6
    assert beats and not any(is_available for _, is_available in beats)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(beats)]
    assert max(gaps) <= timedelta(seconds=HEARTBEAT)
    assert lease_row().last_error == "connection refused"


def test_a_clean_stop_gives_the_lease_up_for_a_standby_to_take_at_once(world):
    clock, _ = world

    def drain(n: int) -> list:
        stop.set()
        return []

    streams = Streams(lambda: FakeStream(clock, drain))

    # when the active observer is stopped (SIGTERM sets the stop event)
    stop = SteppingStop(clock, stop_after=10 * LEASE)
    ConnectionObserver(stream_factory=streams, stop=stop, holder=ME).run()

    # then it had reconciled and beaten, and the lease is free for the next poll
    row = lease_row()
    assert row.lease_holder == ""
    assert row.last_reconciled_at is not None and row.is_broker_available
    assert acquire_observer_lease(OTHER) is True
