"""The management API calls of the unified consumer queue, as the `responses` mock
records them, and the register_queue URL."""

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import responses
from django.conf import settings

from marketplace.models import AgentIdentity
from tests.kit.broker import answer_vhost_lookups

MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
ANY_RESOURCE = re.compile(rf"{re.escape(MANAGEMENT)}/api/.+")


def register_queue_url(identity: AgentIdentity) -> str:
    return f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/register_queue/"


def accept_provisioning(broker: responses.RequestsMock) -> None:
    """Answer every PUT and DELETE as RabbitMQ does when it obeys (and vhost lookups: each
    vhost is there, tagged as the service's)."""
    broker.add(responses.PUT, ANY_RESOURCE, status=201)
    broker.add(responses.DELETE, ANY_RESOURCE, status=204)
    answer_vhost_lookups(broker)


def recorded_calls(broker: responses.RequestsMock) -> list[tuple[str, str, Any]]:
    """(method, decoded path, JSON body or None) of every call the mock received."""
    calls = []
    for call in broker.calls:
        body = call.request.body
        calls.append(
            (
                call.request.method,
                unquote(urlsplit(call.request.url).path),
                json.loads(body) if body else None,
            )
        )
    return calls
