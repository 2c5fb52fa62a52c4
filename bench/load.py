"""The load run: many pollers at once against gunicorn sharing one snapshot through Redis.

wrk keeps N connections busy for a fixed time; the app reaches the broker through a
counting proxy, so what the broker received is counted outside the app (each snapshot is
one GET /api/queues plus one GET /api/connections). gunicorn's access log gives each
request's time inside the worker, which excludes the wait in the listen queue.
"""

import itertools
import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench.probes import ENDPOINT_PATH, percentile

WRK_THREADS = 2
# A request slower than this counts as an error in wrk's report, not as a latency.
WRK_TIMEOUT = "60s"
PROXY_TIMEOUT = 120.0
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
# gunicorn's access log escapes the header's quotes (\").
_SERVER_TIMING = re.compile(r'broker;desc=\\?"(?P<source>\w+)\\?";dur=(?P<ms>[\d.]+)')


@dataclass(frozen=True)
class ProxiedCall:
    path: str
    started: float
    finished: float
    status: int


@dataclass
class CountingProxy:
    """Forwards GETs to the management API and records when each one ran."""

    target: str
    calls: list[ProxiedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        started = time.monotonic()
        headers = {
            name: value
            for name, value in handler.headers.items()
            if name.lower() in {"authorization", "accept"}
        }
        try:
            answer = session.get(self.target + handler.path, headers=headers, timeout=PROXY_TIMEOUT)
            status, body = answer.status_code, answer.content
            content_type = answer.headers.get("Content-Type", "application/json")
        except requests.RequestException:
            status, body, content_type = 502, b"", "text/plain"
        finished = time.monotonic()
        with self._lock:
            self.calls.append(ProxiedCall(handler.path.split("?")[0], started, finished, status))
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @contextmanager
    def serving(self) -> Iterator["CountingProxy"]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


@dataclass(frozen=True)
class LoadResult:
    connections: int
    seconds: float
    requests: int
    requests_per_second: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    latency_max: float
    non_2xx: int
    socket_errors: int
    snapshots: int
    snapshot_seconds: list[float]
    # Shortest time from one snapshot's answer to the next snapshot's first call: a
    # snapshot is shared while younger than the TTL, so this must not be below it.
    shortest_gap: float | None
    ttl: float
    worker_seconds: list[float]
    # Seconds each answer waited for the broker, by how it got its snapshot (the app's
    # Server-Timing header): "fetched", "waited", "shared"; answers shared whole are
    # counted under "answer shared" with no wait.
    broker_waits: dict[str, list[float]]
    wrk_output: str


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("the load run needs wrk: `apt-get install wrk` (or pass --load-seconds 0)")
    return path


def run_wrk(
    url: str,
    token: str,
    *,
    connections: int,
    seconds: int,
    headers: Sequence[str] = (),
    path: str = ENDPOINT_PATH,
) -> str:
    """wrk's report of `connections` pollers GETting `url` + `path` for `seconds`, with
    the token and any further `headers` ("Name: value")."""
    extra: list[str] = []
    for header in headers:
        extra += ["-H", header]
    completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            require_wrk(),
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={WRK_TIMEOUT}",
            "--latency",
            "-H",
            f"Authorization: Token {token}",
            *extra,
            url.rstrip("/") + path,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return completed.stdout


def summarize_load(
    wrk_output: str,
    *,
    connections: int,
    seconds: float,
    calls: Sequence[ProxiedCall],
    ttl: float,
    access_log: Path,
    skip_log_lines: int = 0,
) -> LoadResult:
    """Combine wrk's report, the proxy's record and the workers' access log."""
    snapshots = sorted((call for call in calls if call.path == "/api/queues"), key=_started)
    return LoadResult(
        connections=connections,
        seconds=seconds,
        requests=_wrk_int(r"(\d+) requests in", wrk_output),
        requests_per_second=_wrk_float(r"Requests/sec:\s+([\d.]+)", wrk_output),
        latency_p50=_wrk_latency("50%", wrk_output),
        latency_p90=_wrk_latency("90%", wrk_output),
        latency_p99=_wrk_latency("99%", wrk_output),
        latency_max=_wrk_max_latency(wrk_output),
        non_2xx=_wrk_int(r"Non-2xx or 3xx responses: (\d+)", wrk_output, default=0),
        socket_errors=sum(
            int(value)
            for value in re.findall(
                r"(?:connect|read|write|timeout) (\d+)",
                _line_with("Socket errors", wrk_output),
            )
        ),
        snapshots=len(snapshots),
        snapshot_seconds=[call.finished - call.started for call in snapshots],
        shortest_gap=min(
            (
                following.started - previous.finished
                for previous, following in itertools.pairwise(snapshots)
            ),
            default=None,
        ),
        ttl=ttl,
        worker_seconds=_worker_seconds(access_log, skip=skip_log_lines),
        broker_waits=_broker_waits(access_log, skip=skip_log_lines),
        wrk_output=wrk_output,
    )


def describe_worker_seconds(values: Sequence[float]) -> str:
    if not values:
        return "no access-log lines"
    return (
        f"median {statistics.median(values):.3f} s, p99 {percentile(values, 0.99):.3f} s, "
        f"max {max(values):.3f} s"
    )


def _started(call: ProxiedCall) -> float:
    return call.started


def count_log_lines(access_log: Path) -> int:
    return len(access_log.read_text().splitlines()) if access_log.exists() else 0


def _worker_seconds(access_log: Path, *, skip: int) -> list[float]:
    values = []
    for line in access_log.read_text().splitlines()[skip:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "200":
            values.append(float(parts[0]))
    return values


def _broker_waits(access_log: Path, *, skip: int) -> dict[str, list[float]]:
    waits: dict[str, list[float]] = {}
    for line in access_log.read_text().splitlines()[skip:]:
        if "answer;desc=" in line:
            waits.setdefault("answer shared", []).append(0.0)
        elif match := _SERVER_TIMING.search(line):
            waits.setdefault(match["source"], []).append(float(match["ms"]) / 1000)
    return waits


def describe_broker_waits(waits: dict[str, list[float]]) -> str:
    parts = []
    for source in ("answer shared", "shared", "waited", "fetched"):
        values = waits.get(source, [])
        if source == "answer shared":
            parts.append(f"{len(values):,} answers shared whole")
        elif values:
            parts.append(
                f"{len(values):,} {source} (median {statistics.median(values):.3f} s, "
                f"max {max(values):.3f} s)"
            )
        else:
            parts.append(f"0 {source}")
    return "; ".join(parts)


def _line_with(marker: str, text: str) -> str:
    return next((line for line in text.splitlines() if marker in line), "")


def _wrk_int(pattern: str, text: str, *, default: int | None = None) -> int:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{text}")
        return default
    return int(match.group(1))


def _wrk_float(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk output lacks {pattern!r}:\n{text}")
    return float(match.group(1))


def _wrk_latency(label: str, text: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"wrk output lacks the {label} latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk_max_latency(text: str) -> float:
    # "    Latency   652.12ms  150.03ms   1.21s    70.00%": avg, stdev, max, +/- stdev.
    match = re.search(
        r"^\s+Latency\s+[\d.]+(?:us|ms|s|m)\s+[\d.]+(?:us|ms|s|m)\s+([\d.]+)(us|ms|s|m)",
        text,
        re.MULTILINE,
    )
    if match is None:
        raise ValueError(f"wrk output lacks the latency line:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]
