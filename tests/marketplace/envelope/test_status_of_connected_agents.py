"""judge_connection for agents that consume events over the broker: the observer, the
broker connection, dispatch failures, flaps and API activity, each pinned at its boundary."""

import pytest

from tests.kit.status_facts import THRESHOLDS, ago, connected, connected_facts, judge


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
