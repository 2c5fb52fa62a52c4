"""Waiting for what another thread or process does: poll it, within a generous bound."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.3, message: str
) -> T:
    """Call `predicate` until it returns something truthy and return that; fail the test
    with `message` when `timeout` seconds pass first.

    The bound only keeps a broken test from hanging: assert on the outcome, never on how
    fast it came.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {message}")
        time.sleep(interval)
