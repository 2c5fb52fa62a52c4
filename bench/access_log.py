"""gunicorn's access log as the serving phase reads it (bench.server.ACCESS_LOG_FORMAT).

Why the log and not a wrk Lua `response()` hook for the snapshot age: with that hook
wrk copies every body into Lua, tens of megabytes per answer at 10,000 agents, on the
same two cores the server needs. The log costs one line per answer in the worker.
"""

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.probes import percentile

MISSING = "-"


@dataclass(frozen=True)
class AccessLine:
    """One answer: seconds in the worker, status, body bytes on the wire, headers."""

    seconds: float
    status: int
    body_bytes: int | None
    snapshot_age: float | None
    content_encoding: str
    path: str
    server_timing: str


@dataclass(frozen=True)
class AnswerSummary:
    """What a set of answers looked like from the server's side."""

    answers: int
    statuses: dict[int, int]
    median_body_bytes: int | None
    encodings: dict[str, int]
    # Answers that carried X-Snapshot-Age, and the oldest snapshot any of them served.
    ages_reported: int
    max_snapshot_age: float | None
    worker_p50: float
    worker_p99: float


def parse_access_line(line: str) -> AccessLine | None:
    """An AccessLine, or None for a line of another format (e.g. gunicorn's own)."""
    parts = line.split(" ", 6)
    if len(parts) < 6:
        return None
    try:
        seconds, status = float(parts[0]), int(parts[1])
    except ValueError:
        return None
    return AccessLine(
        seconds=seconds,
        status=status,
        body_bytes=_optional_int(parts[2]),
        snapshot_age=_optional_float(parts[3]),
        content_encoding="" if parts[4] == MISSING else parts[4],
        path=parts[5],
        server_timing=parts[6].strip() if len(parts) > 6 else "",
    )


def read_access_lines(
    access_log: Path, *, skip: int = 0, stop: int | None = None
) -> list[AccessLine]:
    """The parsed lines after the first `skip` (those of the warm-up), up to line `stop`."""
    if not access_log.exists():
        return []
    lines = access_log.read_text().splitlines()[skip:stop]
    return [parsed for parsed in map(parse_access_line, lines) if parsed is not None]


def summarize_answers(lines: Iterable[AccessLine], *, path: str | None = None) -> AnswerSummary:
    """Statuses, wire bytes of the 200s, encodings and the oldest snapshot age served."""
    chosen = [line for line in lines if path is None or line.path == path]
    statuses: dict[int, int] = {}
    encodings: dict[str, int] = {}
    for line in chosen:
        statuses[line.status] = statuses.get(line.status, 0) + 1
        if line.status == 200:
            name = line.content_encoding or "identity"
            encodings[name] = encodings.get(name, 0) + 1
    sizes = [line.body_bytes for line in chosen if line.status == 200 and line.body_bytes]
    ages = [line.snapshot_age for line in chosen if line.snapshot_age is not None]
    seconds = [line.seconds for line in chosen] or [math.nan]
    return AnswerSummary(
        answers=len(chosen),
        statuses=statuses,
        median_body_bytes=int(statistics.median(sizes)) if sizes else None,
        encodings=encodings,
        ages_reported=len(ages),
        max_snapshot_age=max(ages) if ages else None,
        worker_p50=percentile(seconds, 0.5),
        worker_p99=percentile(seconds, 0.99),
    )


def max_starts_within(starts: Sequence[float], *, window: float) -> int:
    """The most events that began inside any half-open interval `window` seconds long:
    1 means never two snapshots within one TTL."""
    ordered = sorted(starts)
    best = 0
    first = 0
    for last, started in enumerate(ordered):
        while started - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _optional_int(text: str) -> int | None:
    return None if text == MISSING else int(text)


def _optional_float(text: str) -> float | None:
    if text == MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        return None
