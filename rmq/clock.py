"""The wall clock that the shared broker snapshot and the shared stats answers read.

Both compare the age of a cached item with a TTL. Reading the time here lets a test put a
fake clock in place (`use_clock`) instead of patching `time.time` for the whole process.
Durations are measured with `time.monotonic`, which is not wall time and stays real.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def time(self) -> float:
        """The current time in seconds since the epoch."""
        ...


class WallClock:
    """The system's clock."""

    def now(self) -> datetime:
        return datetime.now(tz=UTC)

    def time(self) -> float:
        return time.time()


wall_clock = WallClock()
_clock: Clock = wall_clock


def current_clock() -> Clock:
    """Return the clock in use: the system's, unless `use_clock` put another in place."""
    return _clock


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Read the time from `clock` until the block ends."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
