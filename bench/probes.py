"""The three measured ways to answer "which agents are alive", each over real HTTP.

- endpoint: GET the stats endpoint from gunicorn with a support user's token;
- floor: the management-API bulk calls the endpoint needs, with the same parameters as
  rmq/snapshot.py, issued concurrently (time until both bodies are fully read, without
  JSON decoding, so the floor is as low as it can be);
- upstream: Waldur's pattern, one call per broker user and one per vhost, in sequence.

This is a measuring tool, not app code: it talks to the broker with `requests` directly
so that the floor contains nothing but the HTTP calls.
"""

import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import requests

from rmq.snapshot import CONNECTION_COLUMNS, CONSUMER_COLUMNS, QUEUE_PARAMS

ENDPOINT_PATH = "/api/marketplace-site-agent-connection-stats/"
# The cheapest calls that give what the endpoint needs (rmq/snapshot.py has the measurements).
FLOOR_CALLS = (
    ("connections", {"columns": CONNECTION_COLUMNS}),
    ("queues", QUEUE_PARAMS),
    ("consumers", {"columns": CONSUMER_COLUMNS}),
)


@dataclass(frozen=True)
class Sample:
    seconds: float
    calls: int
    size: int
    error: str = ""


class EndpointProbe:
    """The stats endpoint, end to end, with one keep-alive HTTP session."""

    def __init__(self, base_url: str, token: str, *, timeout: float) -> None:
        self.url = base_url.rstrip("/") + ENDPOINT_PATH
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def measure(self) -> Sample:
        started = time.perf_counter()
        response = self.session.get(self.url, timeout=self.timeout)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            # An error is a result too (e.g. 503 when the broker is slower than the app's
            # read timeout): counted and reported, kept out of the timings.
            return Sample(seconds=elapsed, calls=1, size=0, error=_describe_error(response))
        return Sample(seconds=elapsed, calls=1, size=len(response.content))


class FloorProbe:
    """GET /api/connections, /api/queues and /api/consumers (trimmed) concurrently."""

    def __init__(self, management_url: str, auth: tuple[str, str], *, timeout: float) -> None:
        self.base = management_url.rstrip("/") + "/api/"
        self.timeout = timeout
        # One keep-alive session per call, as the app pools its connections too.
        self.sessions = [requests.Session() for _ in FLOOR_CALLS]
        for session in self.sessions:
            session.auth = auth
        self.pool = ThreadPoolExecutor(max_workers=len(FLOOR_CALLS), thread_name_prefix="floor")

    def measure(self) -> Sample:
        started = time.perf_counter()
        futures = [
            self.pool.submit(self._get, session, path, params)
            for session, (path, params) in zip(self.sessions, FLOOR_CALLS, strict=True)
        ]
        sizes = [future.result() for future in futures]
        return Sample(seconds=time.perf_counter() - started, calls=len(sizes), size=sum(sizes))

    def _get(self, session: requests.Session, path: str, params: dict[str, str]) -> int:
        response = session.get(self.base + path, params=params, timeout=self.timeout)
        response.raise_for_status()
        return len(response.content)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class UpstreamProbe:
    """Waldur's pattern: users, a connections call per user, vhosts, a queues call per vhost."""

    def __init__(self, management_url: str, auth: tuple[str, str], *, timeout: float) -> None:
        self.base = management_url.rstrip("/") + "/api/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = auth

    def measure(self) -> Sample:
        started = time.perf_counter()
        calls = 0
        size = 0
        users, body_size = self._get("users")
        calls, size = calls + 1, size + body_size
        for user in users:
            _, body_size = self._get(f"connections/username/{quote(user['name'], safe='')}")
            calls, size = calls + 1, size + body_size
        vhosts, body_size = self._get("vhosts")
        calls, size = calls + 1, size + body_size
        for vhost in vhosts:
            _, body_size = self._get(f"queues/{quote(vhost['name'], safe='')}")
            calls, size = calls + 1, size + body_size
        return Sample(seconds=time.perf_counter() - started, calls=calls, size=size)

    def _get(self, path: str) -> tuple[list[dict[str, str]], int]:
        response = self.session.get(self.base + path, timeout=self.timeout)
        if response.status_code == 404:
            # Other tests share the broker: a user or vhost listed a moment ago may be gone.
            return [], len(response.content)
        response.raise_for_status()
        return response.json(), len(response.content)


def _describe_error(response: requests.Response) -> str:
    try:
        code = response.json().get("code", "")
    except ValueError:
        code = ""
    return f"{response.status_code} {code}".strip()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: p90 of 10 samples is the 9th smallest."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
