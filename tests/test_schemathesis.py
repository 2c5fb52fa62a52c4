"""Property-based fuzzing of every endpoint in the service's own OpenAPI schema.

Each generated request is sent with a support token and with an owner token, with random
path uuids and with the uuids of real objects, against the real database and broker:
no response may be a server error or contradict the schema.
"""

import re
from dataclasses import dataclass

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.factories import (
    AgentProcessorFactory,
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
    UserFactory,
)

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Hypothesis examples per operation; bounded so the whole run takes well under a minute.
EXAMPLES_PER_OPERATION = 8


@dataclass
class World:
    tokens: dict[str, str]
    uuids_by_resource: dict[str, str]


@pytest.fixture
def world(transactional_db, real_broker, settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    queue = EventSubscriptionQueueFactory(
        event_subscription__agent_identity__offering=offering,
        event_subscription__agent_identity__created_by=owner,
    )
    subscription = queue.event_subscription
    identity = subscription.agent_identity
    service = AgentServiceFactory(identity=identity)
    processor = AgentProcessorFactory(service=service)
    support = UserFactory(is_support=True)
    return World(
        tokens={
            "support": Token.objects.get(user=support).key,
            "owner": Token.objects.get(user=owner).key,
        },
        uuids_by_resource={
            "marketplace-site-agent-identities": identity.uuid.hex,
            "marketplace-site-agent-services": service.uuid.hex,
            "marketplace-site-agent-processors": processor.uuid.hex,
            "event-subscriptions": subscription.uuid.hex,
            "event-subscription-queues": queue.uuid.hex,
            "users": owner.uuid.hex,
        },
    )


def load_schema() -> dict:
    """The schema exactly as /api/schema/ serves it, generated in-process."""
    generator = SchemaGenerator()
    return generator.get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(load_schema())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_schema_violation(case, world, live_server):
    for token in world.tokens.values():
        headers = {"Authorization": f"Token {token}"}
        response = case.call(base_url=live_server.url, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        resource = re.match(r"^/api/([^/]+)/\{uuid\}/", case.operation.path)
        if resource and resource.group(1) in world.uuids_by_resource:
            case.path_parameters = {"uuid": world.uuids_by_resource[resource.group(1)]}
            response = case.call(base_url=live_server.url, headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)
