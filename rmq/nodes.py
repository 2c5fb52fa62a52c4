"""The nodes of a RabbitMQ cluster as the service knows them: the configured URL lists, a
credential-free label for each node, and the process's memory of nodes that failed.

A node that refused, timed out or failed (5xx) is remembered as down for a short while,
so each request does not pay its timeout again; the memory is per process (each worker
learns on its own) and never shared through a cache.
"""

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "amqp": 5672, "amqps": 5671}


def parse_node_urls(raw: str, *, schemes: Iterable[str]) -> tuple[str, ...]:
    """Split a comma-separated list of node URLs; raise ValueError naming the position
    (1-based) of an empty or malformed entry, or of two entries for the same host:port
    (node labels name nodes in logs, answers and metrics, so each must be one node), never
    the entry itself (it may hold a password)."""
    allowed = frozenset(schemes)
    entries = [entry.strip() for entry in raw.split(",")]
    first_position: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"entry {position} of {len(entries)}"
        if not entry:
            raise ValueError(f"{where} is empty")
        try:
            parts = urlsplit(entry)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"{where} is not a URL") from exc
        if parts.scheme not in allowed or not parts.hostname:
            raise ValueError(f"{where} is not a {'/'.join(sorted(allowed))} URL with a host")
        label = node_label(entry)
        if label in first_position:
            raise ValueError(
                f"{where} names the same host and port as entry {first_position[label]}"
            )
        first_position[label] = position
    return tuple(entries)


def node_label(url: str) -> str:
    """'http://user:pw@rabbit-1:15672/' -> 'rabbit-1:15672': host and port, never userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    return f"{host}:{port}" if port else host


class NodeMemory:
    """Which nodes (by label) failed recently, and until when they count as down."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._down_until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def mark_down(self, label: str, *, seconds: float) -> None:
        """Remember `label` as down for `seconds` from now."""
        with self._lock:
            self._down_until[label] = self._clock() + seconds
            self._failures[label] = self._failures.get(label, 0) + 1

    def failures_of(self, label: str) -> int:
        """How many failures of `label` were recorded so far (to pass to `mark_up`)."""
        with self._lock:
            return self._failures.get(label, 0)

    def mark_up(self, label: str, *, failures_seen: int | None = None) -> None:
        """Forget a failure of `label`: it answered. With `failures_seen` (`failures_of`
        when the answering call began), a failure recorded since is kept: a hung node may
        answer a small call while another call to it times out, and it must stay down."""
        with self._lock:
            if failures_seen is None or self._failures.get(label, 0) == failures_seen:
                self._down_until.pop(label, None)

    def is_down(self, label: str) -> bool:
        """Whether `label` is remembered as down now."""
        with self._lock:
            until = self._down_until.get(label)
            return until is not None and self._clock() < until

    def order(self, labels: Sequence[str]) -> tuple[str, ...]:
        """The nodes to ask, in configured order: those not remembered down, or every one
        when all are (asking beats failing without asking)."""
        alive = tuple(label for label in labels if not self.is_down(label))
        return alive or tuple(labels)

    def forget_all(self) -> None:
        """Forget every failure."""
        with self._lock:
            self._down_until.clear()


# Shared by every client of the process: a worker that learnt a node is down skips it
# whichever client (settings) asks next.
PROCESS_NODE_MEMORY = NodeMemory()
