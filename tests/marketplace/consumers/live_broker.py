"""The real RabbitMQ as a test sees it: the management API as the service's own user, and
a STOMP-over-WebSocket client that logs in and subscribes exactly as agent 1.0.7 does."""

import threading
from typing import Any

import requests
import stomp
from django.conf import settings

from marketplace.models import EventConsumer

WEB_STOMP = ("127.0.0.1", 15674)
WAIT_SECONDS = 30


def management(method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"{settings.RABBITMQ_MANAGEMENT_URL.rstrip('/')}/api/{path}",
        auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
        timeout=10,
        **kwargs,
    )


def delete_consumer_broker_users() -> None:
    """Remove the broker users of the consumers a test leaves behind (their owners'
    vhosts, with the queues, go with the `real_broker` fixture)."""
    for username in EventConsumer.objects.values_list("rmq_username", flat=True):
        management("DELETE", f"users/{username}")


def publish(*, vhost: str, queue_name: str, payload: str) -> None:
    """Publish a persistent message to a queue through the default exchange, as guest."""
    published = management(
        "POST",
        f"exchanges/{vhost}/amq.default/publish",
        json={
            "properties": {"delivery_mode": 2},
            "routing_key": queue_name,
            "payload": payload,
            "payload_encoding": "string",
        },
    )
    assert published.json() == {"routed": True}


def peek_messages(*, vhost: str, queue_name: str) -> list[str]:
    """The payloads waiting in a queue, read from the queue itself (requeued, so they stay)."""
    answer = management(
        "POST",
        f"queues/{vhost}/{queue_name}/get",
        json={"count": 100, "ackmode": "ack_requeue_true", "encoding": "auto"},
    )
    assert answer.status_code == 200, answer.text
    return [message["payload"] for message in answer.json()]


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
