"""The pure merge, which connection belongs to a subscription: the one logged in as its
uuid hex in its vhost; among several, the latest running one.

Every value is built by hand, so each rule of the report (which connection belongs to a
subscription, which queues belong to an agent, what the summary counts) is pinned alone."""

from datetime import timedelta

import pytest

from marketplace.stats.merge import RmqConnectionStatus, build_connection_report, select_connection
from tests.kit.merge_values import (
    OTHER_VHOST,
    T0,
    VHOST,
    make_agent_row,
    make_connection,
    make_snapshot,
    make_subscription_row,
)


def test_subscription_is_connected_by_a_connection_of_its_uuid_hex_in_its_vhost():
    # given
    sub = make_subscription_row()
    connection = make_connection(sub.uuid.hex, peer_host="10.1.2.3")

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((connection,)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status == RmqConnectionStatus(
        connected=True,
        source_ip="10.1.2.3",
        connected_at=T0,
        state="running",
        recv_oct=477,
        send_oct=537,
        node="rabbit@vm",
        protocol="AMQP 0-9-1",
    )
    assert report.agents[0].is_connected is True


def test_connection_of_the_same_user_in_another_vhost_does_not_connect_the_subscription():
    # given
    sub = make_subscription_row(vhost=VHOST)
    elsewhere = make_connection(sub.uuid.hex, vhost=OTHER_VHOST)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((elsewhere,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection == RmqConnectionStatus(
        connected=False
    )
    assert report.agents[0].is_connected is False


def test_connection_of_another_user_in_the_same_vhost_does_not_connect_the_subscription():
    # given: the captured publisher logs in as guest into the owner's vhost
    sub = make_subscription_row()
    publisher = make_connection("guest")

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((publisher,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection.connected is False


def test_latest_running_connection_is_reported_among_several():
    # given
    sub = make_subscription_row()
    older = make_connection(sub.uuid.hex, connected_at=T0, peer_host="10.0.0.1")
    latest = make_connection(
        sub.uuid.hex, connected_at=T0 + timedelta(seconds=30), peer_host="10.0.0.2"
    )
    middle = make_connection(
        sub.uuid.hex, connected_at=T0 + timedelta(seconds=10), peer_host="10.0.0.3"
    )

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((older, latest, middle)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status.source_ip == "10.0.0.2"
    assert status.connected_at == T0 + timedelta(seconds=30)


def test_select_connection_prefers_a_running_connection_over_a_later_one_without_stats():
    # given
    running = make_connection("u", connected_at=T0, peer_host="10.0.0.1")
    fresh = make_connection(
        "u", connected_at=T0 + timedelta(seconds=5), state=None, peer_host="10.0.0.2"
    )

    # when
    chosen = select_connection([fresh, running])

    # then
    assert chosen == running


def test_select_connection_picks_the_latest_when_none_has_stats_yet():
    # given
    undated = make_connection("u", state=None, connected_at=None, peer_host="10.0.0.1")
    later = make_connection(
        "u", state=None, connected_at=T0 + timedelta(seconds=5), peer_host="10.0.0.2"
    )

    # when
    chosen = select_connection([undated, later])

    # then
    assert chosen == later


def test_connection_without_state_yet_still_counts_as_connected():
    # given: a Web STOMP connection listed before the broker emitted its stats
    sub = make_subscription_row()
    fresh = make_connection(sub.uuid.hex, state=None)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((fresh,)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status.connected is True
    assert status.state is None
    assert status.recv_oct is None
    assert status.send_oct is None
    assert report.agents[0].is_connected is True


@pytest.mark.parametrize("state", ["closed", "closing"])
def test_closed_or_closing_connection_does_not_count_as_connected(state):
    # given
    sub = make_subscription_row()
    dying = make_connection(sub.uuid.hex, state=state)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot((dying,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection == RmqConnectionStatus(
        connected=False
    )
    assert report.agents[0].is_connected is False


def test_select_connection_skips_a_later_closing_connection_for_a_live_one():
    # given
    live = make_connection("u", connected_at=T0, peer_host="10.0.0.1")
    closing = make_connection("u", connected_at=T0 + timedelta(seconds=9), state="closing")

    # when
    chosen = select_connection([closing, live])

    # then
    assert chosen == live


def test_select_connection_returns_none_without_a_live_candidate():
    # given
    candidates = [make_connection("u", state="closed"), make_connection("u", state="closing")]

    # when / then
    assert select_connection(candidates) is None
    assert select_connection([]) is None
