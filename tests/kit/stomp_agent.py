"""A STOMP-over-WebSocket client that logs in and subscribes exactly as agent 1.0.7 does."""

import threading
from typing import Any

import stomp

from tests.kit.real_broker import publish

WEB_STOMP = ("127.0.0.1", 15674)
WAIT_SECONDS = 30


class AgentListener(stomp.ConnectionListener):
    """Collects what the broker sends an agent connection."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.received = threading.Event()
        self.disconnected = threading.Event()

    def on_message(self, frame: Any) -> None:
        self.bodies.append(frame.body)
        self.received.set()

    def on_disconnected(self) -> None:
        self.disconnected.set()


def connect_agent(
    *, vhost: str, login: str, passcode: str
) -> tuple[stomp.WSStompConnection, AgentListener]:
    """Log in over STOMP-over-WebSocket; raises ConnectFailedException when refused."""
    connection = stomp.WSStompConnection(
        host_and_ports=[WEB_STOMP], ws_path="/ws", vhost=vhost, reconnect_attempts_max=1
    )
    listener = AgentListener()
    connection.set_listener("agent", listener)
    connection.connect(login=login, passcode=passcode, wait=True)
    return connection, listener


def subscribe_like_agent(connection: stomp.WSStompConnection, queue_name: str) -> None:
    """SUBSCRIBE as agent 1.0.7 does: /amq/queue/<queue>, id = queue, ack auto, nothing else."""
    connection.subscribe(destination=f"/amq/queue/{queue_name}", id=queue_name, ack="auto")


def can_log_in(*, vhost: str, login: str, passcode: str) -> bool:
    """Whether the broker accepts these STOMP credentials."""
    try:
        connection, _ = connect_agent(vhost=vhost, login=login, passcode=passcode)
    except stomp.exception.ConnectFailedException:
        return False
    connection.disconnect()
    return True


def receive_as_agent(
    *, vhost: str, login: str, passcode: str, queue_name: str, payload: str
) -> list[str]:
    """Log in and subscribe as the agent, publish `payload` to its queue, and return what
    the agent received once the first message arrived (or the deadline passed)."""
    connection, listener = connect_agent(vhost=vhost, login=login, passcode=passcode)
    try:
        subscribe_like_agent(connection, queue_name)
        publish(vhost=vhost, queue_name=queue_name, payload=payload)
        listener.received.wait(timeout=WAIT_SECONDS)
    finally:
        close(connection)
    return listener.bodies


def close(connection: stomp.WSStompConnection) -> None:
    if connection.is_connected():
        connection.disconnect()
