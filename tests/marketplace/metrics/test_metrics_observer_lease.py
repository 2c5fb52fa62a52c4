"""The active observer's lease on /metrics: when it runs out and when it was taken, with
no label naming a process; both 0 while no observer holds it."""

from datetime import UTC, datetime, timedelta

from marketplace.envelope.services import (
    acquire_observer_lease,
    record_observer_beat,
    release_observer_lease,
)
from tests.kit.metrics import parse_samples, sample

EXPIRES = "agentstats_observer_lease_expires_timestamp_seconds"
ACQUIRED = "agentstats_observer_lease_acquired_timestamp_seconds"
TAKEN_AT = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def test_the_lease_gauges_follow_the_holder_and_a_handover(scraper, answering_broker, db, settings):
    settings.OBSERVER_LEASE_SECONDS = 20
    # given no observer has run
    never = parse_samples(scraper().content.decode())

    # when one takes the lease and beats 5 s later
    assert acquire_observer_lease("host-a:1:aaaa", now=TAKEN_AT)
    record_observer_beat(
        holder="host-a:1:aaaa", is_broker_available=True, at=TAKEN_AT + timedelta(seconds=5)
    )
    held = parse_samples(scraper().content.decode())

    # and another takes it over once it expired
    handover_at = TAKEN_AT + timedelta(seconds=30)
    assert acquire_observer_lease("host-b:2:bbbb", now=handover_at)
    handed_over = parse_samples(scraper().content.decode())

    # and that one stops cleanly
    release_observer_lease("host-b:2:bbbb")
    released = parse_samples(scraper().content.decode())

    # then
    assert (sample(never, EXPIRES), sample(never, ACQUIRED)) == (0, 0)
    assert sample(held, EXPIRES) == (TAKEN_AT + timedelta(seconds=25)).timestamp()
    assert sample(held, ACQUIRED) == TAKEN_AT.timestamp()
    assert sample(handed_over, ACQUIRED) == handover_at.timestamp()
    assert sample(handed_over, EXPIRES) == (handover_at + timedelta(seconds=20)).timestamp()
    assert (sample(released, EXPIRES), sample(released, ACQUIRED)) == (0, 0)
    body = scraper().content.decode()
    assert "host-a" not in body and "host-b" not in body
