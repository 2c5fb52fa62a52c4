"""The stats endpoint when the management API misbehaves on a real socket: a closed port,
a server that accepts and never answers, and servers that answer garbage."""

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

STATS_URL = "/api/marketplace-site-agent-connection-stats/"
SLACK_SECONDS = 1.5


class _GarbageHandler(socketserver.BaseRequestHandler):
    reply: bytes = b""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(self.reply)


def _serve(reply: bytes) -> Iterator[str]:
    handler = type("Handler", (_GarbageHandler,), {"reply": reply})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (kernel backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def non_http_server() -> Iterator[str]:
    yield from _serve(b"\x00\xffthis is not HTTP\r\n\r\n")


@pytest.fixture
def non_json_server() -> Iterator[str]:
    body = b"<html>proxy error</html>"
    yield from _serve(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


@pytest.fixture
def closed_port() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "server_fixture", ["closed_port", "silent_server", "non_http_server", "non_json_server"]
)
def test_stats_answers_503_within_the_timeouts_when_the_management_api_misbehaves(
    server_fixture, request, settings, support_user, client_for, identity
):
    # given a management URL that refuses, hangs or answers garbage, and short timeouts
    settings.RABBITMQ_MANAGEMENT_URL = request.getfixturevalue(server_fixture)
    settings.RABBITMQ_CONNECT_TIMEOUT = 1
    settings.RABBITMQ_READ_TIMEOUT = 1
    client = client_for(support_user)

    # when support asks for the stats
    started = time.monotonic()
    response = client.get(STATS_URL)
    elapsed = time.monotonic() - started

    # then the answer is a 503 in DRF's shape, within connect + read timeout
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "broker_unavailable"
    assert set(body) == {"detail", "code"}
    assert (
        elapsed < settings.RABBITMQ_CONNECT_TIMEOUT + settings.RABBITMQ_READ_TIMEOUT + SLACK_SECONDS
    )
    # and the worker is not stuck: the next request is answered the same way
    assert client.get(STATS_URL).status_code == 503
