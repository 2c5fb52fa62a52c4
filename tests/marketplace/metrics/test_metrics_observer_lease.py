"""The active observer's lease on /metrics: when it runs out and when it was taken, with
no label naming a process; both 0 while no observer holds it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from marketplace.envelope.services import (
    acquire_observer_lease,
    record_observer_beat,
    release_observer_lease,
)
from marketplace.models import ObserverStatus
from tests.kit.metrics import parse_samples, sample

EXPIRES = "agentstats_observer_lease_expires_timestamp_seconds"
ACQUIRED = "agentstats_observer_lease_acquired_timestamp_seconds"
TAKEN_AT = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def test_the_lease_gauges_follow_the_holder_and_a_handover(scraper, answering_broker, db, settings):
    settings.OBSERVER_LEASE_SECONDS = 20
    # given no observer has run
    never = parse_samples(scraper().content.decode())

    # when one takes the lease and beats 5 s later
    assert acquire_observer_lease("host-a:1:aaaa")
    record_observer_beat(
        holder="host-a:1:aaaa", is_broker_available=True, at=TAKEN_AT + timedelta(seconds=5)
    )
    held_row = ObserverStatus.objects.get()
    held = parse_samples(scraper().content.decode())

    # and another takes it over once it expired (by the database's clock)
    ObserverStatus.objects.update(
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        lease_acquired_at=timezone.now() - timedelta(hours=1),
    )
    assert acquire_observer_lease("host-b:2:bbbb")
    handover_row = ObserverStatus.objects.get()
    handed_over = parse_samples(scraper().content.decode())

    # and that one stops cleanly
    release_observer_lease("host-b:2:bbbb")
    released = parse_samples(scraper().content.decode())

    # then the gauges are the row's lease times, the acquisition moving on the handover
    assert (sample(never, EXPIRES), sample(never, ACQUIRED)) == (0, 0)
    assert held_row.lease_expires_at is not None and held_row.lease_acquired_at is not None
    assert sample(held, EXPIRES) == held_row.lease_expires_at.timestamp()
    assert sample(held, ACQUIRED) == held_row.lease_acquired_at.timestamp()
    assert handover_row.lease_expires_at is not None and handover_row.lease_acquired_at
    assert sample(handed_over, ACQUIRED) == handover_row.lease_acquired_at.timestamp()
    assert sample(handed_over, ACQUIRED) > timezone.now().timestamp() - 60
    assert sample(handed_over, EXPIRES) == handover_row.lease_expires_at.timestamp()
    assert (
        handover_row.lease_expires_at - handover_row.lease_acquired_at
    ).total_seconds() == pytest.approx(20, abs=0.01)
    assert (sample(released, EXPIRES), sample(released, ACQUIRED)) == (0, 0)
    body = scraper().content.decode()
    assert "host-a" not in body and "host-b" not in body
