"""The observer lease in the database: taken when free or expired (compare-and-set, one
winner), renewed by the holder's beats only, given up on a clean stop. Expiry is judged
by the database's clock (lease_expires_at = the database's now + the lease), never a
host's: a test expires a lease by writing a past lease_expires_at."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from marketplace.envelope.services import (
    ObserverLeaseLost,
    acquire_observer_lease,
    record_observer_beat,
    release_observer_lease,
)
from marketplace.models import ObserverStatus

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LEASE = 20
FIRST, SECOND, THIRD = "host-a:101:aaaa", "host-b:202:bbbb", "host-c:303:cccc"
# The database's clock, read by the same host, between two readings of ours (SQLite's
# keeps milliseconds).
SLACK = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def lease_settings(settings) -> None:
    settings.OBSERVER_LEASE_SECONDS = LEASE


def observer_row() -> ObserverStatus:
    return ObserverStatus.objects.get(name="default")


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def expire_lease() -> None:
    """The lease's end passed, by the database's clock."""
    ObserverStatus.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def assert_between(moment: datetime | None, start: datetime, end: datetime) -> None:
    assert moment is not None
    assert start - SLACK <= moment <= end + SLACK


def test_the_first_observer_takes_a_free_lease_for_the_lease_length(db):
    # when an observer asks for the lease when no row exists yet
    before = timezone.now()
    is_taken = acquire_observer_lease(FIRST)
    after = timezone.now()

    # then it holds it from the database's now, for the lease
    assert is_taken is True
    row = observer_row()
    assert row.lease_holder == FIRST
    assert_between(row.lease_acquired_at, before, after)
    assert_between(
        row.lease_expires_at, before + timedelta(seconds=LEASE), after + timedelta(seconds=LEASE)
    )


def test_a_held_lease_is_not_taken_before_it_expires(db):
    # given FIRST holds the lease
    assert acquire_observer_lease(FIRST)
    expires_at = observer_row().lease_expires_at

    # when SECOND asks before it expires
    is_taken = acquire_observer_lease(SECOND)

    # then SECOND stands by and FIRST still holds it
    assert is_taken is False
    assert observer_row().lease_holder == FIRST
    assert observer_row().lease_expires_at == expires_at


def test_each_beat_of_the_holder_renews_the_lease_and_records_the_beat(db):
    # given FIRST holds a lease that is about to end
    assert acquire_observer_lease(FIRST)
    acquired_at = observer_row().lease_acquired_at
    ObserverStatus.objects.update(lease_expires_at=timezone.now() + timedelta(seconds=1))

    # when it beats, having reconciled
    before = timezone.now()
    record_observer_beat(holder=FIRST, is_broker_available=True, is_reconciled=True, at=later(15))
    after = timezone.now()

    # then the lease runs a whole lease from the beat, and the beat is recorded as at
    row = observer_row()
    assert_between(
        row.lease_expires_at, before + timedelta(seconds=LEASE), after + timedelta(seconds=LEASE)
    )
    assert row.lease_acquired_at == acquired_at
    assert (row.last_beat_at, row.last_reconciled_at) == (later(15), later(15))
    assert row.is_broker_available is True
    # and a contender does not get it
    assert acquire_observer_lease(SECOND) is False


def test_a_host_clock_behind_or_ahead_neither_shortens_nor_steals_a_lease(db):
    # given FIRST's host clock is an hour behind: it beats with that time
    assert acquire_observer_lease(FIRST)
    record_observer_beat(
        holder=FIRST, is_broker_available=True, at=timezone.now() - timedelta(hours=1)
    )

    # then its lease still runs from the database's now, and SECOND cannot take it
    assert observer_row().lease_expires_at > timezone.now() + timedelta(seconds=LEASE / 2)
    assert acquire_observer_lease(SECOND) is False
    assert observer_row().lease_holder == FIRST


def test_an_expired_lease_goes_to_one_of_two_contenders_only(db):
    # given FIRST held the lease and stopped beating (killed), and it expired
    assert acquire_observer_lease(FIRST)
    expire_lease()

    # when two standbys poll one after the other
    before = timezone.now()
    results = [acquire_observer_lease(SECOND), acquire_observer_lease(THIRD)]

    # then exactly the first to ask holds it, from its taking
    assert results == [True, False]
    row = observer_row()
    assert row.lease_holder == SECOND
    assert_between(row.lease_acquired_at, before, timezone.now())
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=LEASE / 2)


def test_the_old_holder_steps_down_when_its_lease_was_taken(db):
    # given FIRST's lease expired and SECOND took it
    assert acquire_observer_lease(FIRST)
    expire_lease()
    assert acquire_observer_lease(SECOND)
    record_observer_beat(holder=SECOND, is_broker_available=True, at=later(LEASE + 2))
    expires_at = observer_row().lease_expires_at

    # when FIRST wakes up and beats
    with pytest.raises(ObserverLeaseLost, match=FIRST):
        record_observer_beat(
            holder=FIRST, is_broker_available=False, error="late", at=later(LEASE + 3)
        )

    # then its beat wrote nothing: SECOND's beat and lease stand
    row = observer_row()
    assert row.lease_holder == SECOND
    assert row.last_beat_at == later(LEASE + 2)
    assert (row.is_broker_available, row.last_error) == (True, "")
    assert row.lease_expires_at == expires_at


def test_a_beat_without_the_lease_raises_and_creates_nothing(db):
    with pytest.raises(ObserverLeaseLost):
        record_observer_beat(holder=FIRST, is_broker_available=True, at=NOW)

    assert not ObserverStatus.objects.exists()


def test_a_released_lease_is_taken_at_once_and_the_beat_stays(db):
    # given FIRST holds the lease and has beaten
    assert acquire_observer_lease(FIRST)
    record_observer_beat(holder=FIRST, is_broker_available=True, at=later(1))

    # when it stops cleanly
    release_observer_lease(FIRST)

    # then nobody holds the lease, the last beat is kept, and a standby takes it at once
    row = observer_row()
    assert (row.lease_holder, row.lease_expires_at, row.lease_acquired_at) == ("", None, None)
    assert row.last_beat_at == later(1)
    assert acquire_observer_lease(SECOND) is True
    assert observer_row().lease_holder == SECOND


def test_releasing_a_lease_another_holds_changes_nothing(db):
    # given SECOND took the lease after FIRST's expired
    assert acquire_observer_lease(FIRST)
    expire_lease()
    assert acquire_observer_lease(SECOND)
    expires_at = observer_row().lease_expires_at

    # when FIRST stops and releases
    release_observer_lease(FIRST)

    # then SECOND still holds it
    assert observer_row().lease_holder == SECOND
    assert observer_row().lease_expires_at == expires_at


def test_the_holder_asking_again_takes_a_new_term(db):
    # given FIRST holds a lease that began an hour ago (it stepped down after a database
    # error and polls again)
    assert acquire_observer_lease(FIRST)
    ObserverStatus.objects.update(
        lease_acquired_at=timezone.now() - timedelta(hours=1),
        lease_expires_at=timezone.now() + timedelta(seconds=1),
    )

    # when it asks again before the lease expires
    before = timezone.now()
    assert acquire_observer_lease(FIRST) is True

    # then its new term starts now
    row = observer_row()
    assert_between(row.lease_acquired_at, before, timezone.now())
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=LEASE / 2)


def test_on_postgresql_concurrent_contenders_for_an_expired_lease_have_one_winner(
    transactional_db, real_postgres
):
    # given an expired lease, and eight standbys each with its own database connection
    assert acquire_observer_lease(FIRST)
    expire_lease()
    contenders = [f"host-{n}:{n}:cafe" for n in range(8)]
    start = threading.Barrier(len(contenders))
    results: dict[str, bool] = {}

    def contend(holder: str) -> None:
        try:
            start.wait(timeout=30)
            results[holder] = acquire_observer_lease(holder)
        finally:
            connection.close()

    # when they all ask at the same moment
    threads = [threading.Thread(target=contend, args=(holder,)) for holder in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly one won, and it is the one the row names
    assert len(results) == len(contenders)
    winners = [holder for holder, is_taken in results.items() if is_taken]
    assert len(winners) == 1
    assert observer_row().lease_holder == winners[0]
