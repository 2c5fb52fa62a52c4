"""A management API that hangs: it accepts connections and never answers.

The worst broker outage for a caller: the TCP connect succeeds at once, so only the
read timeout ends the wait. Used by the hung-broker benchmark phase and the threaded
server's integration test.
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

READ_CHUNK = 65536
LISTEN_BACKLOG = 256


@dataclass
class HeldConnection:
    """One accepted connection: when it came, and when the caller gave up (closed it)."""

    sock: socket.socket
    accepted_at: float
    closed_at: float | None = None


class HungListener:
    """Listens on 127.0.0.1 (a free port), accepts, reads what callers send, answers never."""

    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(LISTEN_BACKLOG)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._lock = threading.Lock()
        self._held: list[HeldConnection] = []
        self._is_closed = False

    def __enter__(self) -> "HungListener":
        threading.Thread(target=self._accept_forever, daemon=True, name="hung-accept").start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def count_accepted(self) -> int:
        with self._lock:
            return len(self._held)

    def is_holding_since(self, moment: float) -> bool:
        """Whether a connection accepted before `moment` (monotonic) is still unanswered
        and open: some caller has been waiting on this 'broker' since then."""
        with self._lock:
            return any(held.accepted_at < moment and held.closed_at is None for held in self._held)

    def close(self) -> None:
        """Stop accepting and drop every held connection (their callers fail at once)."""
        with self._lock:
            if self._is_closed:
                return
            self._is_closed = True
            held = list(self._held)
        # shutdown() wakes the accept() blocked in the accepting thread.
        for sock in (self._server, *(item.sock for item in held)):
            # Not connected (the listener) or already gone: nothing to shut down.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_forever(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return  # closed
            held = HeldConnection(sock, time.monotonic())
            with self._lock:
                if self._is_closed:
                    sock.close()
                    return
                self._held.append(held)
            threading.Thread(target=self._drain, args=(held,), daemon=True).start()

    def _drain(self, held: HeldConnection) -> None:
        # Read the request (and anything after it) so the caller's send never blocks;
        # an empty read is the caller closing: its timeout ran out.
        try:
            while held.sock.recv(READ_CHUNK):
                pass
        except OSError:
            pass  # reset by the caller, or closed by close()
        with self._lock:
            held.closed_at = time.monotonic()
