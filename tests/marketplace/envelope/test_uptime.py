"""measure_uptime: the seconds of the last 24 h in which an agent had a connection."""

from datetime import datetime, timedelta

from marketplace.envelope.status import TimelinePoint, measure_uptime
from tests.kit.status_facts import NOW, WINDOW_START, ago


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
