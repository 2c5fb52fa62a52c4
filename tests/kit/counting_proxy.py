"""An HTTP proxy in front of the management API that records every GET it forwards, so a
test counts what all the app processes together asked the broker."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

FORWARD_TIMEOUT = (5, 30)
FORWARDED_HEADERS = {"authorization", "accept", "accept-encoding"}


@dataclass(frozen=True)
class ForwardedCall:
    """One GET the proxy forwarded: its path (no query) and when it arrived (monotonic)."""

    path: str
    arrived: float
    status: int


class CountingProxy:
    """Forwards GETs to `target` and records each one."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.calls: list[ForwardedCall] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._forward(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls_to(self, path: str, *, since: float, until: float) -> list[ForwardedCall]:
        """The forwarded GETs of `path` that arrived in [since, until] (monotonic)."""
        with self._lock:
            return [c for c in self.calls if c.path == path and since <= c.arrived <= until]

    @contextmanager
    def serving(self) -> Iterator["CountingProxy"]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(timeout=10)

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        headers = {k: v for k, v in handler.headers.items() if k.lower() in FORWARDED_HEADERS}
        try:
            answer = session.get(
                self.target + handler.path, headers=headers, timeout=FORWARD_TIMEOUT, stream=True
            )
            body = answer.raw.read(decode_content=False)
            status = answer.status_code
            passed = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in {"content-type", "content-encoding"}
            }
        except requests.RequestException:
            status, body, passed = 502, b"", {"Content-Type": "text/plain"}
        with self._lock:
            self.calls.append(ForwardedCall(handler.path.split("?")[0], arrived, status))
        handler.send_response(status)
        for name, value in passed.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
