"""What tests do on the real RabbitMQ: provision an agent through the service's own code,
read the management API, publish a message."""

from typing import Any

import requests
from django.conf import settings

from marketplace.models import AgentIdentity, EventSubscription, EventSubscriptionQueue
from marketplace.registration.services import create_subscription_queue, register_event_subscription
from rmq.client import ManagementClient


def provision_agent(
    identity: AgentIdentity, *, owner: Any, object_type: str, source_ip: str | None = "127.0.0.1"
) -> tuple[EventSubscription, EventSubscriptionQueue]:
    """Register an event subscription of `identity` and its queue, on the real broker."""
    broker = ManagementClient.from_settings()
    subscription, _ = register_event_subscription(
        identity,
        owner=owner,
        object_type=object_type,
        description="",
        source_ip=source_ip,
        broker=broker,
    )
    queue, _ = create_subscription_queue(
        subscription, offering=identity.offering, object_type=object_type, broker=broker
    )
    return subscription, queue


def management(method: str, path: str, **kwargs: Any) -> requests.Response:
    """Call /api/<path> of the real management API, as the configured user."""
    return requests.request(
        method,
        f"{settings.RABBITMQ_MANAGEMENT_URL.rstrip('/')}/api/{path}",
        auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
        timeout=10,
        **kwargs,
    )


def management_get(path: str, *, params: dict[str, str] | None = None) -> requests.Response:
    """GET /api/<path> of the real management API, as the configured user."""
    return management("GET", path, params=params)


def publish(*, vhost: str, queue_name: str, payload: str) -> None:
    """Publish one persistent message to a queue through the default exchange."""
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
