"""A wall clock for tests: it stands still until a test moves it."""

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from rmq.clock import current_clock


@dataclass
class FakeClock:
    """A `rmq.clock.Clock` that moves only when told to."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def time(self) -> float:
        return self.current.timestamp()

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    def ago(self, seconds: float) -> datetime:
        return self.current - timedelta(seconds=seconds)


class ClockDatetime(datetime):
    """datetime whose now() reads rmq's clock: patched into rmq.snapshot, snapshots are
    stamped in the test's time."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> "ClockDatetime":
        return cls.fromtimestamp(current_clock().time(), tz)
