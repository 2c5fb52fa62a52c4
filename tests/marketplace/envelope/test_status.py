"""The pure rules of an agent's connection state: judge_connection and measure_uptime.

Every rule of marketplace.connection_status is pinned at its boundary: the last moment a
rule still holds and the first moment it no longer does.
"""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from marketplace.envelope.status import (
    ConnectionFacts,
    Judgement,
    Thresholds,
    TimelinePoint,
    judge_connection,
    measure_uptime,
)

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


# --- broker-connected agents: the observer and the broker ---------------------------------


def test_connected_agent_is_unknown_when_the_observer_never_beat():
    # given
    facts = connected_facts(observer_last_beat_at=None, last_seen=ago(1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("unknown", "unknown", "observer_unavailable")


def test_connected_agent_is_unknown_when_the_observer_beat_is_one_second_too_old():
    # given
    facts = connected_facts(observer_last_beat_at=ago(THRESHOLDS.observer_stale_after_seconds + 1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("unknown", "unknown", "observer_unavailable")


def test_connected_agent_is_judged_normally_when_the_observer_beat_is_exactly_at_the_limit():
    # given
    facts = connected_facts(observer_last_beat_at=ago(THRESHOLDS.observer_stale_after_seconds))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("online", "available", "connected")


def test_stale_observer_wins_over_an_unreachable_broker_and_a_missing_connection():
    # given
    facts = connected_facts(
        observer_last_beat_at=None, is_broker_available=False, live_connections=0
    )

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("unknown", "unknown", "observer_unavailable")


def test_connected_agent_is_unknown_when_the_observer_cannot_reach_the_broker():
    # given
    facts = connected_facts(is_broker_available=False, last_seen=ago(1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("unknown", "unknown", "broker_unavailable")


def test_unreachable_broker_is_unknown_not_offline_even_with_no_recorded_connection():
    # given
    facts = connected_facts(is_broker_available=False, live_connections=0)

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("unknown", "unknown", "broker_unavailable")


# --- broker-connected agents: offline, degraded, healthy, online ---------------------------


def test_connected_agent_without_a_broker_connection_is_offline_even_if_it_calls_the_api():
    # given
    facts = connected_facts(live_connections=0, last_seen=ago(1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("offline", "offline", "no_broker_connection")


def test_no_broker_connection_wins_over_a_recent_dispatch_failure():
    # given
    facts = connected_facts(live_connections=0, last_dispatch_failed_at=ago(1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("offline", "offline", "no_broker_connection")


@pytest.mark.parametrize(
    ("failed_seconds_ago", "expected"),
    [
        (1, connected("degraded", "unhealthy", "recent_dispatch_failure")),
        (900, connected("degraded", "unhealthy", "recent_dispatch_failure")),
        (901, connected("online", "available", "connected")),
    ],
    ids=["just-failed", "failed-exactly-window-ago", "failed-one-second-outside-window"],
)
def test_connected_agent_is_degraded_only_while_a_dispatch_failure_is_inside_the_window(
    failed_seconds_ago, expected
):
    # given
    facts = connected_facts(last_dispatch_failed_at=ago(failed_seconds_ago))

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


@pytest.mark.parametrize(
    ("flaps", "expected"),
    [
        (4, connected("online", "available", "connected")),
        (5, connected("degraded", "unhealthy", "flapping")),
        (6, connected("degraded", "unhealthy", "flapping")),
    ],
    ids=["one-below-threshold", "at-threshold", "above-threshold"],
)
def test_connected_agent_is_degraded_when_it_flaps_threshold_times_in_24h(flaps, expected):
    # given
    facts = connected_facts(flaps_24h=flaps)

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


def test_recent_dispatch_failure_is_the_reason_when_the_agent_also_flaps():
    # given
    facts = connected_facts(last_dispatch_failed_at=ago(1), flaps_24h=THRESHOLDS.flap_threshold)

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("degraded", "unhealthy", "recent_dispatch_failure")


def test_degraded_wins_over_healthy_for_an_agent_active_on_the_api():
    # given
    facts = connected_facts(last_seen=ago(1), flaps_24h=THRESHOLDS.flap_threshold)

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("degraded", "unhealthy", "flapping")


@pytest.mark.parametrize(
    ("seen_seconds_ago", "expected"),
    [
        (0, connected("healthy", "available", "active")),
        (600, connected("healthy", "available", "active")),
        (601, connected("online", "available", "connected")),
        (None, connected("online", "available", "connected")),
    ],
    ids=["seen-now", "seen-exactly-at-limit", "seen-one-second-too-long-ago", "never-seen"],
)
def test_connected_agent_is_healthy_while_seen_within_healthy_seconds_else_online(
    seen_seconds_ago, expected
):
    # given
    last_seen = None if seen_seconds_ago is None else ago(seen_seconds_ago)
    facts = connected_facts(last_seen=last_seen)

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


def test_connected_agent_unseen_for_longer_than_offline_after_is_still_online_while_connected():
    # given: the offline-after rule is for polling agents; the connection speaks for this one
    facts = connected_facts(last_seen=ago(THRESHOLDS.offline_after_seconds + 3600))

    # when
    judgement = judge(facts)

    # then
    assert judgement == connected("online", "available", "connected")


# --- hosted (polling) agents ---------------------------------------------------------------


def test_hosted_agent_never_seen_is_unknown():
    # given
    facts = hosted_facts(last_seen=None)

    # when
    judgement = judge(facts)

    # then
    assert judgement == hosted("unknown", "unknown", "never_seen")


@pytest.mark.parametrize(
    ("seen_seconds_ago", "expected"),
    [
        (1800, hosted("online", "available", "seen")),
        (1801, hosted("offline", "offline", "not_seen_recently")),
    ],
    ids=["seen-exactly-at-limit", "seen-one-second-too-long-ago"],
)
def test_hosted_agent_goes_offline_just_over_offline_after_seconds(seen_seconds_ago, expected):
    # given
    facts = hosted_facts(last_seen=ago(seen_seconds_ago))

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


@pytest.mark.parametrize(
    ("seen_seconds_ago", "expected"),
    [
        (600, hosted("healthy", "available", "active")),
        (601, hosted("online", "available", "seen")),
    ],
    ids=["seen-exactly-at-limit", "seen-one-second-too-long-ago"],
)
def test_hosted_agent_is_healthy_while_seen_within_healthy_seconds_else_online_seen(
    seen_seconds_ago, expected
):
    # given
    facts = hosted_facts(last_seen=ago(seen_seconds_ago))

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


def test_hosted_agent_is_judged_without_the_observer_or_the_broker():
    # given: the observer is down and the broker unreachable, which polling does not need
    facts = hosted_facts(last_seen=ago(1), observer_last_beat_at=None, is_broker_available=False)

    # when
    judgement = judge(facts)

    # then
    assert judgement == hosted("healthy", "available", "active")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"last_dispatch_failed_at": ago(900)},
            hosted("degraded", "unhealthy", "recent_dispatch_failure"),
        ),
        ({"last_dispatch_failed_at": ago(901)}, hosted("online", "available", "seen")),
        ({"flaps_24h": 5}, hosted("degraded", "unhealthy", "flapping")),
        ({"flaps_24h": 4}, hosted("online", "available", "seen")),
    ],
    ids=["failure-inside-window", "failure-outside-window", "flaps-at-threshold", "flaps-below"],
)
def test_hosted_agent_seen_recently_is_degraded_by_the_same_rules(changes, expected):
    # given
    facts = hosted_facts(**changes)

    # when
    judgement = judge(facts)

    # then
    assert judgement == expected


def test_hosted_agent_not_seen_recently_stays_offline_despite_a_recent_failure():
    # given
    facts = hosted_facts(last_seen=ago(1801), last_dispatch_failed_at=ago(1))

    # when
    judgement = judge(facts)

    # then
    assert judgement == hosted("offline", "offline", "not_seen_recently")


# --- routing status ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "connection_status", "routing_status"),
    [
        (connected_facts(last_seen=ago(1)), "healthy", "available"),
        (connected_facts(), "online", "available"),
        (connected_facts(flaps_24h=5), "degraded", "unhealthy"),
        (connected_facts(live_connections=0), "offline", "offline"),
        (connected_facts(observer_last_beat_at=None), "unknown", "unknown"),
        (hosted_facts(last_seen=ago(1)), "healthy", "available"),
        (hosted_facts(), "online", "available"),
        (hosted_facts(last_dispatch_failed_at=ago(1)), "degraded", "unhealthy"),
        (hosted_facts(last_seen=ago(1801)), "offline", "offline"),
        (hosted_facts(last_seen=None), "unknown", "unknown"),
    ],
    ids=[
        "connected-healthy",
        "connected-online",
        "connected-degraded",
        "connected-offline",
        "connected-unknown",
        "hosted-healthy",
        "hosted-online",
        "hosted-degraded",
        "hosted-offline",
        "hosted-unknown",
    ],
)
def test_routing_status_follows_the_connection_status(facts, connection_status, routing_status):
    # when
    judgement = judge(facts)

    # then
    assert (judgement.connection_status, judgement.status) == (connection_status, routing_status)


# --- measure_uptime ------------------------------------------------------------------------


def point(name: str, kind: str, seconds_ago: float) -> TimelinePoint:
    return TimelinePoint(connection_name=name, kind=kind, occurred_at=ago(seconds_ago))


def uptime(events: list[TimelinePoint], open_connections: list[tuple[str, datetime]]) -> float:
    return measure_uptime(
        events, open_connections=open_connections, window_start=WINDOW_START, now=NOW
    )


def test_open_connection_older_than_the_window_counts_the_whole_window():
    # given
    open_connections = [("c1", NOW - timedelta(hours=48))]

    # when
    seconds = uptime([], open_connections)

    # then
    assert seconds == 86_400


def test_open_connection_with_its_connect_event_counts_from_the_connect():
    # given
    events = [point("c1", "connected", 3600)]

    # when
    seconds = uptime(events, [("c1", ago(3600))])

    # then
    assert seconds == 3600


def test_connect_and_disconnect_inside_the_window_count_the_time_between():
    # given
    events = [point("c1", "connected", 7200), point("c1", "disconnected", 3600)]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 3600


def test_disconnect_without_its_connect_counts_from_the_window_start():
    # given: connected before the window opened, closed one hour into it
    events = [point("c1", "disconnected", 23 * 3600)]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 3600


def test_overlapping_connections_are_counted_once():
    # given: c1 from -3h to -1h, c2 from -2h to -30min
    events = [
        point("c1", "connected", 3 * 3600),
        point("c2", "connected", 2 * 3600),
        point("c1", "disconnected", 3600),
        point("c2", "disconnected", 1800),
    ]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 9000


def test_connection_nested_inside_a_longer_one_adds_nothing():
    # given: c1 from -3h to -1h, c2 from -2h to -90min
    events = [
        point("c1", "connected", 3 * 3600),
        point("c2", "connected", 2 * 3600),
        point("c2", "disconnected", 5400),
        point("c1", "disconnected", 3600),
    ]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 7200


def test_closed_connection_overlapping_an_open_one_is_counted_once():
    # given: c1 from -3h to -1h closed; c2 open since -2h
    events = [
        point("c1", "connected", 3 * 3600),
        point("c2", "connected", 2 * 3600),
        point("c1", "disconnected", 3600),
    ]

    # when
    seconds = uptime(events, [("c2", ago(2 * 3600))])

    # then
    assert seconds == 3 * 3600


def test_separate_connections_add_up():
    # given
    events = [
        point("c1", "connected", 5 * 3600),
        point("c1", "disconnected", 4 * 3600),
        point("c2", "connected", 2 * 3600),
        point("c2", "disconnected", 3600),
    ]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 7200


def test_events_given_out_of_order_are_measured_in_time_order():
    # given
    events = [point("c1", "disconnected", 3600), point("c1", "connected", 7200)]

    # when
    seconds = uptime(events, [])

    # then
    assert seconds == 3600


def test_no_events_and_no_open_connections_measure_zero():
    # when
    seconds = uptime([], [])

    # then
    assert seconds == 0
