"""register_queue on the real RabbitMQ and PostgreSQL: the queue and the least-privilege
user it provisions, and a real STOMP-over-WebSocket agent consuming with them."""

import pytest
from rest_framework.authtoken.models import Token

from marketplace.models import EventConsumer
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS
from tests.factories import AgentIdentityFactory
from tests.kit.real_broker import management, peek_messages, publish
from tests.kit.stomp_agent import (
    WAIT_SECONDS,
    can_log_in,
    close,
    connect_agent,
    receive_as_agent,
    subscribe_like_agent,
)
from tests.marketplace.consumers.management import register_queue_url

pytestmark = [pytest.mark.broker, pytest.mark.postgres]


@pytest.fixture
def live(real_postgres, consumer_broker_cleanup) -> None:
    """The real PostgreSQL and RabbitMQ, cleaned up after the test."""


def register(client, identity, body=None) -> EventConsumer:
    response = client.post(register_queue_url(identity), body or {}, format="json")
    assert response.status_code in (200, 201), response.content
    return EventConsumer.objects.select_related("user").get(identity=identity)


def test_register_queue_declares_the_durable_queue_with_upstreams_arguments(
    live, identity, owner_client
):
    # when
    consumer = register(owner_client, identity, {"object_types": ["order"]})

    # then the queue exists, durable, with exactly upstream's arguments
    queue = management("GET", f"queues/{consumer.vhost}/{consumer.queue_name}")
    assert queue.status_code == 200
    body = queue.json()
    assert (body["durable"], body["auto_delete"], body["exclusive"]) == (True, False, False)
    assert body["arguments"] == CONSUMER_QUEUE_ARGUMENTS
    assert body["arguments"] == {
        "x-message-ttl": 3600000,
        "x-max-length": 10000,
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "waldur.dlq.messages",
    }


def test_register_queue_user_may_only_read_its_own_queue(live, identity, owner_client):
    # when
    consumer = register(owner_client, identity)

    # then the user has no tags and exactly one permission: read its queue
    user = management("GET", f"users/{consumer.rmq_username}")
    assert user.status_code == 200
    assert user.json()["tags"] in ("", [])
    permissions = management("GET", f"users/{consumer.rmq_username}/permissions").json()
    assert [
        (item["vhost"], item["configure"], item["write"], item["read"]) for item in permissions
    ] == [(consumer.vhost, "^$", "^$", f"^consumer_{consumer.uuid.hex}$")]


def test_agent_logs_in_with_its_token_and_receives_what_is_published_to_its_queue(
    live, identity, owner, owner_client
):
    # given a registered queue
    consumer = register(owner_client, identity)
    token = Token.objects.get(user=owner).key

    # when the agent logs in as the consumer's user with its API token and subscribes,
    # and an order event is published to its queue
    order = '{"object_type": "order", "order_uuid": "abc"}'
    received = receive_as_agent(
        vhost=consumer.vhost,
        login=consumer.rmq_username,
        passcode=token,
        queue_name=consumer.queue_name,
        payload=order,
    )

    # then the agent receives it
    assert received == [order]


def test_consumer_user_cannot_read_another_agents_queue(
    live, identity, offering, owner, owner_client
):
    # given two agents of one owner (one vhost), each with its queue
    mine = register(owner_client, identity)
    theirs = register(owner_client, AgentIdentityFactory(offering=offering, created_by=owner))
    assert mine.vhost == theirs.vhost
    publish(vhost=theirs.vhost, queue_name=theirs.queue_name, payload='{"secret": 1}')

    # and the first agent consuming its own queue
    connection, listener = connect_agent(
        vhost=mine.vhost, login=mine.rmq_username, passcode=Token.objects.get(user=owner).key
    )
    try:
        subscribe_like_agent(connection, mine.queue_name)
        publish(vhost=mine.vhost, queue_name=mine.queue_name, payload='{"mine": 1}')
        assert listener.received.wait(timeout=WAIT_SECONDS)

        # when it subscribes to the other queue too
        subscribe_like_agent(connection, theirs.queue_name)

        # then the broker refuses: it closes the connection (web-stomp drops the ERROR frame)
        assert listener.disconnected.wait(timeout=WAIT_SECONDS)
    finally:
        close(connection)
    # only its own message was delivered, and the other one still waits in its queue
    assert listener.bodies == ['{"mine": 1}']
    assert peek_messages(vhost=theirs.vhost, queue_name=theirs.queue_name) == ['{"secret": 1}']


def test_consumer_user_cannot_publish_even_to_its_own_queue(live, identity, owner, owner_client):
    # given an agent subscribed to its queue
    consumer = register(owner_client, identity)
    connection, listener = connect_agent(
        vhost=consumer.vhost,
        login=consumer.rmq_username,
        passcode=Token.objects.get(user=owner).key,
    )
    try:
        subscribe_like_agent(connection, consumer.queue_name)
        publish(vhost=consumer.vhost, queue_name=consumer.queue_name, payload='{"real": 1}')
        assert listener.received.wait(timeout=WAIT_SECONDS)

        # when it publishes to its own queue
        connection.send(destination=f"/amq/queue/{consumer.queue_name}", body='{"forged": 1}')

        # then the broker refuses (write is ^$): it closes the connection
        assert listener.disconnected.wait(timeout=WAIT_SECONDS)
    finally:
        close(connection)
    # and nothing was published
    assert listener.bodies == ['{"real": 1}']
    assert peek_messages(vhost=consumer.vhost, queue_name=consumer.queue_name) == []


def test_registering_again_with_a_rotated_token_moves_the_broker_password_to_it(
    live, identity, owner, client_for
):
    # given a queue registered with the owner's first token, which logs in
    consumer = register(client_for(owner), identity)
    old_token = Token.objects.get(user=owner).key
    assert can_log_in(vhost=consumer.vhost, login=consumer.rmq_username, passcode=old_token)

    # when the token is rotated and the agent registers again with the new one
    Token.objects.filter(user=owner).delete()
    again = register(client_for(owner), identity)
    new_token = Token.objects.get(user=owner).key

    # then the old token no longer logs in, and the new one does
    assert again.rmq_username == consumer.rmq_username
    assert not can_log_in(vhost=consumer.vhost, login=consumer.rmq_username, passcode=old_token)
    assert can_log_in(vhost=consumer.vhost, login=consumer.rmq_username, passcode=new_token)
