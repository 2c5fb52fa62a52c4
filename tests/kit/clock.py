"""A wall clock for tests: it stands still until a test moves it."""

from dataclasses import dataclass
from datetime import datetime, timedelta


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
