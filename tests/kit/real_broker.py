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


def management_get(path: str, *, params: dict[str, str] | None = None) -> requests.Response:
    """GET /api/<path> of the real management API, as the configured user."""
    return requests.get(
        f"{settings.RABBITMQ_MANAGEMENT_URL}/api/{path}",
        params=params,
        auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
        timeout=5,
    )


def publish(*, vhost: str, queue_name: str, payload: str) -> None:
    """Publish one persistent message to a queue through the default exchange."""
    published = requests.post(
        f"{settings.RABBITMQ_MANAGEMENT_URL}/api/exchanges/{vhost}/amq.default/publish",
        auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
        json={
            "properties": {"delivery_mode": 2},
            "routing_key": queue_name,
            "payload": payload,
            "payload_encoding": "string",
        },
        timeout=5,
    )
    assert published.json() == {"routed": True}
