"""register_queue through the real `waldur-api-client` 8.1.3 against a live server, as
waldur-site-agent 1.0.7 calls it: the SDK parses every answer, and a real STOMP client
consumes the queue with what it was told."""

import uuid
from importlib import metadata

import pytest
from rest_framework.authtoken.models import Token
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_site_agent_identities import (
    marketplace_site_agent_identities_create,
    marketplace_site_agent_identities_list,
    marketplace_site_agent_identities_register_queue,
)
from waldur_api_client.models import (
    AgentIdentityRequest,
    AgentQueueRegistrationRequest,
    AgentQueueRegistrationResponse,
    ObservableObjectTypeEnum,
)

from marketplace.models import EventConsumer
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.real_broker import management
from tests.kit.stomp_agent import receive_as_agent

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

AGENT_OBJECT_TYPES = [
    ObservableObjectTypeEnum.ORDER,
    ObservableObjectTypeEnum.RESOURCE_API_KEY_ROTATION,
]


@pytest.fixture
def agent(transactional_db, real_postgres, real_broker, live_server):
    """An offering owner's SDK client against the live server, and the offering."""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    token = Token.objects.get(user=owner).key
    # Closed afterwards: a kept-alive connection holds a live-server thread and its
    # database connection, which blocks dropping the test database.
    with AuthenticatedClient(base_url=live_server.url, token=token) as client:
        yield client, owner, offering, token


def register_identity(client: AuthenticatedClient, offering_uuid: uuid.UUID):
    """Find or create the agent's identity, as the agent does at start."""
    name = f"agent-{offering_uuid}"
    found = marketplace_site_agent_identities_list.sync(client=client, name=name)
    assert found == []
    return marketplace_site_agent_identities_create.sync(
        client=client,
        body=AgentIdentityRequest(offering=offering_uuid, name=name, version="1.0.7"),
    )


def register_queue(client: AuthenticatedClient, identity_hex: str, object_types):
    return marketplace_site_agent_identities_register_queue.sync_detailed(
        uuid=identity_hex,
        client=client,
        body=AgentQueueRegistrationRequest(object_types=object_types),
    )


def test_sdk_parses_register_queue_answers_and_the_agent_consumes_its_queue(agent):
    # given the agent's identity, registered with the SDK
    client, owner, offering, token = agent
    assert metadata.version("waldur-api-client") == "8.1.3"
    identity = register_identity(client, offering.uuid)

    # when the agent registers its queue, and registers it again at its next start
    first = register_queue(client, identity.uuid.hex, AGENT_OBJECT_TYPES)
    again = register_queue(client, identity.uuid.hex, AGENT_OBJECT_TYPES)

    # then the SDK parsed both answers: created, then found
    assert (first.status_code, again.status_code) == (201, 200)
    assert isinstance(first.parsed, AgentQueueRegistrationResponse)
    answer = first.parsed
    consumer = EventConsumer.objects.get(identity__uuid=identity.uuid)
    assert answer.rmq_username == consumer.rmq_username
    assert answer.queue_name == f"consumer_{consumer.uuid.hex}"
    assert answer.vhost == owner.uuid.hex
    assert answer.observable_object_types == ["order", "resource_api_key_rotation"]
    assert answer.additional_properties == {}
    assert again.parsed.to_dict() == answer.to_dict()

    # and the agent logs in with what it was told and its token, and receives an order
    order = '{"object_type": "order", "order_uuid": "1f0c"}'
    received = receive_as_agent(
        vhost=answer.vhost,
        login=answer.rmq_username,
        passcode=token,
        queue_name=answer.queue_name,
        payload=order,
    )
    assert received == [order]


def test_sdk_register_queue_with_every_object_type_and_with_none(agent):
    # given
    client, _, offering, _ = agent
    identity = register_identity(client, offering.uuid)

    # when the agent asks for every 8.1.3 type by name, then for all with an empty list
    every_type = list(ObservableObjectTypeEnum)
    named = register_queue(client, identity.uuid.hex, every_type)
    emptied = register_queue(client, identity.uuid.hex, [])

    # then the SDK parses both, and the stored filter follows the request
    assert named.status_code == 201
    assert named.parsed.observable_object_types == [item.value for item in every_type]
    assert emptied.status_code == 200
    assert emptied.parsed.observable_object_types == []
    queue = management("GET", f"queues/{emptied.parsed.vhost}/{emptied.parsed.queue_name}")
    assert queue.status_code == 200
