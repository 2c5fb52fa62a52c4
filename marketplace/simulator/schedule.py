"""The simulated fleet's schedule: which agents flap and when, and when a refused consumer
may try again.

Pure functions of a seed and the clock (no I/O), so tests pin the plan exactly.
"""

import random
from dataclasses import dataclass

# An offline stretch covers this share of its flap period, long enough for the broker's
# connection list (refreshed every few seconds) to show the gap.
OFFLINE_SHARE_RANGE = (0.25, 0.6)

STOMP_BACKOFF_BASE_SECONDS = 1.0
STOMP_BACKOFF_CAP_SECONDS = 30.0
STABLE_CONNECTION_SECONDS = 30.0


def compute_backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after `failures` consecutive failures: doubling from `base`, capped."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))


@dataclass(frozen=True)
class OfflineWindow:
    """When, in seconds since the fleet came up, an agent is disconnected."""

    start: float
    end: float

    def covers(self, elapsed: float) -> bool:
        """Whether the moment falls inside the window (start inclusive, end exclusive)."""
        return self.start <= elapsed < self.end


def choose_flapping_agents(agent_count: int, *, share: float, seed: int) -> frozenset[int]:
    """Pick the indexes of the agents that flap: `share` of the fleet, rounded half up."""
    count = min(agent_count, int(agent_count * share + 0.5))
    rng = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    return frozenset(rng.sample(range(agent_count), count))


def plan_offline_window(
    agent_index: int, period_index: int, *, period_seconds: float, seed: int
) -> OfflineWindow:
    """The offline stretch of one agent in one flap period: a random part at a random offset.

    Seeded per (seed, agent, period), so the plan does not depend on the order of questions.
    """
    rng = random.Random(f"{seed}:{agent_index}:{period_index}")  # noqa: S311 - not a secret
    length = rng.uniform(*OFFLINE_SHARE_RANGE) * period_seconds
    start = period_index * period_seconds + rng.uniform(0.0, period_seconds - length)
    return OfflineWindow(start=start, end=start + length)


class FlapSchedule:
    """Which agents should be connected at a moment; deterministic for a seed."""

    def __init__(self, agent_count: int, *, share: float, period_seconds: float, seed: int) -> None:
        if period_seconds <= 0:
            raise ValueError("The flap period must be positive.")
        self.period_seconds = period_seconds
        self.seed = seed
        self.flapping = choose_flapping_agents(agent_count, share=share, seed=seed)

    def window_at(self, agent_index: int, elapsed: float) -> OfflineWindow:
        """The offline window of the flap period that contains `elapsed`."""
        period_index = int(elapsed // self.period_seconds)
        return plan_offline_window(
            agent_index, period_index, period_seconds=self.period_seconds, seed=self.seed
        )

    def is_online(self, agent_index: int, *, elapsed: float) -> bool:
        """Whether the agent should hold its connections `elapsed` seconds in."""
        if agent_index not in self.flapping:
            return True
        return not self.window_at(agent_index, elapsed).covers(elapsed)


@dataclass
class RetryState:
    """Consecutive connect failures of one consumer and when it may try again.

    A connection the broker drops soon after accepting it does not reset the count, so a
    broker that accepts and drops at once is retried ever more slowly too.
    """

    failures: int = 0
    next_attempt_at: float = 0.0
    connected_at: float | None = None

    def is_due(self, now: float) -> bool:
        """Whether a connect may be attempted now."""
        return now >= self.next_attempt_at

    def record_success(self, now: float) -> None:
        """Note when the consumer connected."""
        self.connected_at = now

    def record_failure(self, now: float) -> float:
        """Count a refusal or a drop and push the next attempt back; return the delay."""
        if self.connected_at is not None and now - self.connected_at >= STABLE_CONNECTION_SECONDS:
            self.failures = 0
        self.connected_at = None
        self.failures += 1
        delay = compute_backoff_delay(
            self.failures, base=STOMP_BACKOFF_BASE_SECONDS, cap=STOMP_BACKOFF_CAP_SECONDS
        )
        self.next_attempt_at = now + delay
        return delay
