"""The wall-clock seam: the system's clock unless a test puts another in place."""

from datetime import UTC, datetime

import pytest

from rmq.clock import current_clock, use_clock, wall_clock
from tests.kit.clock import FakeClock


def test_the_clock_in_use_is_the_systems_by_default():
    # when
    before = datetime.now(UTC).timestamp()
    seconds = current_clock().time()
    moment = current_clock().now()

    # then
    assert current_clock() is wall_clock
    assert before <= seconds <= datetime.now(UTC).timestamp()
    assert moment.utcoffset() is not None
    assert moment.utcoffset().total_seconds() == 0


def test_a_clock_put_in_place_answers_until_the_block_ends():
    # given
    stopped = FakeClock(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))

    # when
    with use_clock(stopped):
        stopped.advance(10)
        inside = (current_clock().now(), current_clock().time())

    # then
    assert inside == (
        datetime(2026, 1, 2, 3, 4, 15, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 15, tzinfo=UTC).timestamp(),
    )
    assert current_clock() is wall_clock


def test_the_previous_clock_is_back_even_when_the_block_fails():
    # given
    stopped = FakeClock(datetime(2026, 1, 2, tzinfo=UTC))

    # when
    with pytest.raises(RuntimeError), use_clock(stopped):
        raise RuntimeError("boom")

    # then
    assert current_clock() is wall_clock
