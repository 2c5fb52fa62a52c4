"""The fleet simulator's pure parts: which agents flap and when, how long a refused
consumer backs off, and the status line."""

import pytest

from marketplace.simulator.fleet import FleetStatus, format_status_line
from marketplace.simulator.schedule import (
    FlapSchedule,
    RetryState,
    choose_flapping_agents,
    compute_backoff_delay,
    plan_offline_window,
)


@pytest.mark.parametrize(
    ("agent_count", "share", "expected"),
    [(5, 0.2, 1), (3, 0.5, 2), (4, 0.0, 0), (4, 1.0, 4), (10, 0.25, 3), (1, 0.4, 0)],
)
def test_flapping_agents_are_the_share_of_the_fleet_rounded_half_up(agent_count, share, expected):
    # when the flapping agents are chosen
    chosen = choose_flapping_agents(agent_count, share=share, seed=7)

    # then exactly the share is chosen, among the fleet's indexes
    assert len(chosen) == expected
    assert chosen <= frozenset(range(agent_count))


def test_the_same_seed_chooses_the_same_flapping_agents():
    # given two choices with one seed and one with another
    first = choose_flapping_agents(20, share=0.5, seed=3)
    again = choose_flapping_agents(20, share=0.5, seed=3)
    other_seeds = {choose_flapping_agents(20, share=0.5, seed=seed) for seed in range(4, 10)}

    # then the seed alone decides
    assert first == again
    assert len(other_seeds | {first}) > 1


@pytest.mark.parametrize("period_index", [0, 1, 7])
def test_an_offline_window_is_a_quarter_to_three_fifths_of_its_own_period(period_index):
    for seed in range(50):
        # when one agent's offline window is planned for a 20 s period
        window = plan_offline_window(2, period_index, period_seconds=20.0, seed=seed)

        # then it lies inside that period and covers 25-60 % of it
        assert period_index * 20.0 <= window.start < window.end <= (period_index + 1) * 20.0
        assert 5.0 <= window.end - window.start <= 12.0


def test_a_flapping_agent_is_offline_exactly_inside_its_window_and_online_around_it():
    # given a schedule where every agent flaps
    schedule = FlapSchedule(2, share=1.0, period_seconds=20.0, seed=11)
    window = schedule.window_at(1, 45.0)

    # then agent 1 is offline from the window's start up to (not including) its end
    assert 40.0 <= window.start < window.end <= 60.0
    assert schedule.is_online(1, elapsed=window.start - 0.01) is True
    assert schedule.is_online(1, elapsed=window.start) is False
    assert schedule.is_online(1, elapsed=(window.start + window.end) / 2) is False
    assert schedule.is_online(1, elapsed=window.end) is True


def test_agents_that_do_not_flap_are_always_online():
    # given a fleet of five with no flapping share
    schedule = FlapSchedule(5, share=0.0, period_seconds=2.0, seed=1)

    # then every agent is online at every moment
    assert schedule.flapping == frozenset()
    assert all(
        schedule.is_online(agent, elapsed=tenth / 10) for agent in range(5) for tenth in range(400)
    )


def test_a_flapping_agent_goes_offline_once_in_every_period():
    # given one agent that flaps with a 10 s period
    schedule = FlapSchedule(1, share=1.0, period_seconds=10.0, seed=5)

    # when its state is sampled every 0.1 s for 60 s
    states = [schedule.is_online(0, elapsed=tenth / 10) for tenth in range(600)]

    # then it went offline in each of the six periods, once per period
    offline_starts = [
        tenth for tenth in range(600) if not states[tenth] and (tenth == 0 or states[tenth - 1])
    ]
    assert [start // 100 for start in offline_starts] == [0, 1, 2, 3, 4, 5]


def test_the_plan_does_not_depend_on_the_order_it_is_asked_in():
    # given two schedules with one seed
    forward = FlapSchedule(4, share=0.5, period_seconds=20.0, seed=9)
    backward = FlapSchedule(4, share=0.5, period_seconds=20.0, seed=9)
    moments = [(agent, second / 2) for agent in range(4) for second in range(200)]

    # when they are asked in opposite orders
    forward_answers = {key: forward.is_online(key[0], elapsed=key[1]) for key in moments}
    backward_answers = {key: backward.is_online(key[0], elapsed=key[1]) for key in moments[::-1]}

    # then they agree on every moment
    assert forward_answers == backward_answers


def test_a_flap_period_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        FlapSchedule(3, share=0.5, period_seconds=0.0, seed=1)


def test_backoff_doubles_from_the_base_up_to_the_cap():
    delays = [compute_backoff_delay(failures, base=1.0, cap=30.0) for failures in range(8)]

    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_refused_consumer_is_not_due_again_before_its_delay_has_passed():
    # given a consumer refused three times in a row
    retry = RetryState()
    delays = [retry.record_failure(100.0), retry.record_failure(101.0)]
    delays.append(retry.record_failure(103.0))

    # then each delay doubles and the next attempt waits for the last one
    assert delays == [1.0, 2.0, 4.0]
    assert retry.is_due(106.9) is False
    assert retry.is_due(107.0) is True


def test_a_connection_dropped_soon_after_connecting_keeps_backing_off():
    # given a consumer that failed twice, then connected and was dropped 5 s later
    retry = RetryState()
    retry.record_failure(0.0)
    retry.record_failure(1.0)
    retry.record_success(3.0)

    # when the drop is recorded
    delay = retry.record_failure(8.0)

    # then the delay keeps doubling
    assert delay == 4.0
    assert retry.failures == 3


def test_a_drop_after_a_long_stable_connection_starts_backoff_over():
    # given a consumer that failed twice, then held its connection for a minute
    retry = RetryState()
    retry.record_failure(0.0)
    retry.record_failure(1.0)
    retry.record_success(3.0)

    # when it is dropped
    delay = retry.record_failure(63.0)

    # then it retries after the base delay
    assert delay == 1.0
    assert retry.failures == 1


def test_status_line_counts_connections_and_messages_per_agent_busiest_first():
    status = FleetStatus(
        elapsed=75.4,
        total_agents=5,
        online_agents=4,
        total_consumers=10,
        connected_consumers=8,
        flapping_agents=1,
        connect_failures=2,
        messages={"sim-agent-1": 1, "sim-agent-2": 0, "sim-agent-3": 4, "sim-agent-4": 1},
    )

    assert format_status_line(status) == (
        "[01:15] agents connected 4/5, consumers 8/10, flapping 1, connect failures 2, "
        "messages 6 (sim-agent-3=4 sim-agent-1=1 sim-agent-4=1)"
    )


def test_status_line_without_messages_lists_no_agents():
    status = FleetStatus(
        elapsed=3.0,
        total_agents=2,
        online_agents=0,
        total_consumers=4,
        connected_consumers=0,
        flapping_agents=0,
        connect_failures=0,
        messages={"sim-agent-1": 0, "sim-agent-2": 0},
    )

    assert format_status_line(status) == (
        "[00:03] agents connected 0/2, consumers 0/4, flapping 0, connect failures 0, messages 0"
    )
