"""The stats endpoint when the management API misbehaves on a real socket: a closed port,
a server that accepts and never answers, and servers that answer garbage."""

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.kit.api import STATS_URL
from tests.kit.network import free_port

# The bound proves the answer does not hang on the broker, not that it is fast: generous,
# so a loaded CI machine meets it; a hung request would still miss it by far.
SLACK_SECONDS = 10


class _ScriptedHandler(socketserver.BaseRequestHandler):
    """Answers every request with the parts of `reply`, pausing `pause` seconds before each."""

    reply: tuple[bytes, ...] = ()
    pause: float = 0.0

    def handle(self) -> None:
        self.request.recv(65536)
        try:
            for part in self.reply:
                time.sleep(self.pause)
                self.request.sendall(part)
        except OSError:
            return  # the client gave up, as it should


def _serve(*reply: bytes, pause: float = 0.0) -> Iterator[str]:
    handler = type("Handler", (_ScriptedHandler,), {"reply": reply, "pause": pause})
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


def _json_response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """Sends headers, then one byte of a never-ending JSON list every 0.3 s."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\nConnection: close\r\n\r\n["
    )
    yield from _serve(head, *([b" "] * 100), pause=0.3)


@pytest.fixture
def oversized_server(settings) -> Iterator[str]:
    """A valid JSON answer larger than RABBITMQ_MAX_RESPONSE_BYTES."""
    settings.RABBITMQ_MAX_RESPONSE_BYTES = 1_000_000
    yield from _serve(_json_response(b"[" + b"0," * 1_000_000 + b"0]"))


@pytest.fixture
def closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "server_fixture",
    [
        "closed_port",
        "silent_server",
        "non_http_server",
        "non_json_server",
        "dripping_server",
        "oversized_server",
    ],
)
def test_stats_answers_503_within_the_timeouts_when_the_management_api_misbehaves(
    server_fixture, request, settings, support_user, client_for, identity
):
    # given a management URL that refuses, hangs or answers garbage, and short timeouts
    settings.RABBITMQ_MANAGEMENT_URL = request.getfixturevalue(server_fixture)
    settings.RABBITMQ_CONNECT_TIMEOUT = 1
    settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT = 1
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
        elapsed
        < settings.RABBITMQ_CONNECT_TIMEOUT
        + settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT
        + SLACK_SECONDS
    )
    # and the worker is not stuck: the next request is answered the same way
    assert client.get(STATS_URL).status_code == 503


@pytest.mark.parametrize(
    ("delay", "snapshot_read_timeout", "expected_status"),
    [
        (0.5, 1, 200),
        (1.6, 1, 503),
        # Slower than the read timeout of every other call, within the snapshot's own.
        (1.6, 2.5, 200),
    ],
)
def test_stats_answer_when_the_broker_is_slow_just_under_or_over_the_snapshot_read_timeout(
    delay, snapshot_read_timeout, expected_status, settings, support_user, client_for, identity
):
    # given a management API that answers correctly after `delay` seconds, read timeout 1 s
    server = _serve(_json_response(b"[]"), pause=delay)
    settings.RABBITMQ_MANAGEMENT_URL = next(server)
    settings.RABBITMQ_CONNECT_TIMEOUT = 1
    settings.RABBITMQ_READ_TIMEOUT = 1
    settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT = snapshot_read_timeout
    settings.BROKER_SNAPSHOT_TTL = 0
    try:
        # when support asks for the stats
        started = time.monotonic()
        response = client_for(support_user).get(STATS_URL)
        elapsed = time.monotonic() - started
    finally:
        server.close()

    # then in time it is a correct 200 (the agent listed, disconnected), late it is a 503
    assert response.status_code == expected_status
    assert elapsed < settings.RABBITMQ_CONNECT_TIMEOUT + snapshot_read_timeout + SLACK_SECONDS
    if expected_status == 200:
        assert response.json()["summary"]["total_agents"] == 1
        assert response.json()["agents"][0]["uuid"] == str(identity.uuid)
    else:
        assert response.json()["code"] == "broker_unavailable"


def test_stats_answer_200_for_a_large_broker_answer_that_arrives_in_time(
    settings, support_user, client_for, identity
):
    # given 20,000 connections of other users (about 3 MB), within the size cap; the
    # server answers every listing alike, so each item also reads as a queue and a consumer
    other = (
        b'{"name":"c","user":"someone-else","vhost":"v","peer_host":"10.0.0.1",'
        b'"connected_at":1764110000000,"state":"running","recv_oct":1,"send_oct":1,'
        b'"queue":{"name":"c","vhost":"v"}}'
    )
    server = _serve(_json_response(b"[" + b",".join([other] * 20_000) + b"]"))
    settings.RABBITMQ_MANAGEMENT_URL = next(server)
    settings.BROKER_SNAPSHOT_TTL = 0
    try:
        response = client_for(support_user).get(STATS_URL)
    finally:
        server.close()

    # then the answer is right: our agent is there and not connected
    assert response.status_code == 200, response.json()
    assert response.json()["summary"] == response.json()["summary"] | {
        "total_agents": 1,
        "connected_agents": 0,
    }
