"""The facts the pure status rules judge (marketplace.envelope.status), at a fixed NOW."""

import dataclasses
from datetime import UTC, datetime, timedelta

from marketplace.envelope.status import ConnectionFacts, Judgement, Thresholds, judge_connection

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(hours=24)
THRESHOLDS = Thresholds(
    healthy_seen_seconds=600,
    offline_after_seconds=1800,
    degraded_window_seconds=900,
    flap_threshold=5,
    observer_stale_after_seconds=60,
)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def connected_facts(**changes: object) -> ConnectionFacts:
    """An event-consuming agent with one live connection, a fresh observer and a reachable
    broker, quiet on the API, no failures, no flaps."""
    facts = ConnectionFacts(
        has_subscriptions=True,
        live_connections=1,
        last_seen=None,
        last_dispatch_failed_at=None,
        flaps_24h=0,
        observer_last_beat_at=ago(1),
        is_broker_available=True,
    )
    return dataclasses.replace(facts, **changes)


def hosted_facts(**changes: object) -> ConnectionFacts:
    """A polling agent (no subscriptions) seen a minute over the healthy window; no observer."""
    facts = ConnectionFacts(
        has_subscriptions=False,
        live_connections=0,
        last_seen=ago(THRESHOLDS.healthy_seen_seconds + 60),
        last_dispatch_failed_at=None,
        flaps_24h=0,
        observer_last_beat_at=None,
        is_broker_available=False,
    )
    return dataclasses.replace(facts, **changes)


def judge(facts: ConnectionFacts) -> Judgement:
    return judge_connection(facts, thresholds=THRESHOLDS, now=NOW)


def connected(status: str, routing: str, reason: str) -> Judgement:
    return Judgement("connected", status, routing, reason)


def hosted(status: str, routing: str, reason: str) -> Judgement:
    return Judgement("hosted", status, routing, reason)
