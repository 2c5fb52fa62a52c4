"""An owner's vhost limits on the real RabbitMQ: sized from the database on every
registration, never in the way of the service's own declares, enforced on everyone else."""

from typing import Any

import pika
import pika.exceptions
import pytest
from rest_framework.authtoken.models import Token

from marketplace.models import EventConsumer
from tests.factories import AgentIdentityFactory
from tests.kit.real_broker import management, management_get, provision_agent
from tests.marketplace.consumers.management import register_queue_url

pytestmark = [pytest.mark.broker, pytest.mark.postgres]


@pytest.fixture
def live(real_postgres, real_broker) -> None:
    """The real PostgreSQL and RabbitMQ, cleaned up after the test."""


def vhost_limits(vhost: str) -> dict[str, int]:
    answer = management_get(f"vhost-limits/{vhost}")
    assert answer.status_code == 200, answer.text
    [entry] = answer.json()
    return entry["value"]


def queues_in(vhost: str) -> list[str]:
    return sorted(queue["name"] for queue in management_get(f"queues/{vhost}").json())


def register_consumer(client: Any, identity: Any) -> EventConsumer:
    response = client.post(register_queue_url(identity), {}, format="json")
    assert response.status_code in (200, 201), response.content
    return EventConsumer.objects.get(identity=identity)


def test_every_registration_sizes_the_owners_vhost_limits_from_the_database(
    live, identity, owner, client_for, settings
):
    # given the settings the limits are computed with
    settings.RABBITMQ_VHOST_LIMIT_HEADROOM = 4
    settings.RABBITMQ_CONNECTIONS_PER_BROKER_USER = 3

    # when the agent registers a legacy subscription with its queue
    provision_agent(identity, owner=owner, object_type="order")

    # then the vhost allows one queue and one broker user, plus the headroom
    assert vhost_limits(owner.uuid.hex) == {"max-queues": 1 + 4, "max-connections": 3 + 4}

    # and when another agent of the owner registers its unified consumer queue
    register_consumer(client_for(owner), AgentIdentityFactory(offering=identity.offering))

    # then the limits grow by its queue and its broker user
    assert vhost_limits(owner.uuid.hex) == {"max-queues": 2 + 4, "max-connections": 6 + 4}


def test_registration_never_fails_on_its_own_limit_even_without_headroom(
    live, identity, owner, client_for, settings
):
    # given no headroom at all
    settings.RABBITMQ_VHOST_LIMIT_HEADROOM = 0
    vhost = owner.uuid.hex

    # when one agent registers three legacy subscriptions with a queue each, another agent
    # its consumer queue, and the first repeats a registration (as agents do on restart)
    names = [
        provision_agent(identity, owner=owner, object_type=kind)[1].queue_name
        for kind in ("order", "resource", "user_role")
    ]
    consumer = register_consumer(
        client_for(owner), AgentIdentityFactory(offering=identity.offering)
    )
    provision_agent(identity, owner=owner, object_type="order")

    # then every declare fitted: the vhost holds exactly the four queues, at its limit
    assert queues_in(vhost) == sorted([*names, consumer.queue_name])
    assert vhost_limits(vhost)["max-queues"] == 4

    # and a fifth queue, even declared by the management user, is refused
    refused = management(
        "PUT", f"queues/{vhost}/not-an-agent-queue", json={"durable": True, "auto_delete": False}
    )
    assert refused.status_code == 400
    assert "queue limit" in refused.json()["reason"]
    assert "not-an-agent-queue" not in queues_in(vhost)


def test_a_connection_beyond_max_connections_is_refused(live, identity, owner, settings):
    # given one broker user allowed one connection, with no headroom
    settings.RABBITMQ_VHOST_LIMIT_HEADROOM = 0
    settings.RABBITMQ_CONNECTIONS_PER_BROKER_USER = 1
    subscription, _ = provision_agent(identity, owner=owner, object_type="order")
    parameters = pika.ConnectionParameters(
        host="127.0.0.1",
        virtual_host=owner.uuid.hex,
        credentials=pika.PlainCredentials(subscription.uuid.hex, Token.objects.get(user=owner).key),
        connection_attempts=1,
    )

    # when the user opens a first connection, then a second
    first = pika.BlockingConnection(parameters)
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError) as raised:
            pika.BlockingConnection(parameters).close()
    finally:
        first.close()

    # then the first is let in and the second refused for the vhost's connection limit
    assert "connection limit" in repr(raised.value)
