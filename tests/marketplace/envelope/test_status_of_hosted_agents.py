"""judge_connection for hosted (polling) agents, each rule pinned at its boundary, and the
routing status every connection status maps to."""

import pytest

from tests.kit.status_facts import ago, connected_facts, hosted, hosted_facts, judge


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
