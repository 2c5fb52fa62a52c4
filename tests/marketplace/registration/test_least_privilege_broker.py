"""A legacy subscription's broker user on the real RabbitMQ, logged in with real AMQP (pika)
and STOMP-over-WebSocket clients: it reads its own queues and can do nothing else."""

from collections.abc import Callable, Iterator
from typing import Any

import pika
import pika.exceptions
import pytest
from rest_framework.authtoken.models import Token

from marketplace.registration.services import create_subscription_queue
from rmq.client import ManagementClient
from tests.factories import AgentIdentityFactory, OfferingFactory
from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get, provision_agent, publish
from tests.kit.stomp_agent import close, connect_agent, receive_as_agent

pytestmark = [pytest.mark.broker, pytest.mark.postgres]
ACCESS_REFUSED = 403


@pytest.fixture
def legacy(real_postgres, real_broker, identity, owner) -> dict[str, Any]:
    """A subscription of the agent with its order queue, as registration provisions them."""
    subscription, queue = provision_agent(identity, owner=owner, object_type="order")
    return {
        "subscription": subscription,
        "queue": queue,
        "vhost": owner.uuid.hex,
        "login": subscription.uuid.hex,
        "password": Token.objects.get(user=owner).key,
    }


@pytest.fixture
def amqp(legacy) -> Iterator[pika.BlockingConnection]:
    """An AMQP connection logged in as the subscription's user."""
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            virtual_host=legacy["vhost"],
            credentials=pika.PlainCredentials(legacy["login"], legacy["password"]),
        )
    )
    yield connection
    if connection.is_open:
        connection.close()


def refusal_of(action: Callable[[Any], object], connection: pika.BlockingConnection) -> str:
    """Run `action` on a fresh channel and return the broker's ACCESS_REFUSED text."""
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as raised:
        action(channel)
    assert raised.value.reply_code == ACCESS_REFUSED, raised.value
    return raised.value.reply_text


def get_one(channel: Any, queue_name: str) -> bytes | None:
    """One message from the queue (acknowledged), or None when it is empty."""
    method, _, body = channel.basic_get(queue_name, auto_ack=True)
    return body if method else None


def queue_exists(vhost: str, name: str) -> bool:
    return management_get(f"queues/{vhost}/{name}").status_code == 200


def test_the_subscription_user_may_read_exactly_its_queue_and_configure_and_write_nothing(
    legacy,
):
    # when the broker is asked for the user's permissions
    permissions = management_get(f"permissions/{legacy['vhost']}/{legacy['login']}").json()

    # then it may read its one queue by exact name and nothing else
    assert permissions["configure"] == "^$"
    assert permissions["write"] == "^$"
    assert permissions["read"] == f"^(?:{legacy['queue'].queue_name})$"


def test_a_new_queue_of_the_subscription_is_added_to_its_read_permission(legacy, identity):
    # given a second offering the subscription gets a queue on
    other = OfferingFactory(customer=identity.offering.customer)

    # when the service creates that queue
    second, _ = create_subscription_queue(
        legacy["subscription"],
        offering=other,
        object_type="order",
        broker=ManagementClient.from_settings(),
    )

    # then the permission is reset to name both queues, and the service declared the queue
    permissions = management_get(f"permissions/{legacy['vhost']}/{legacy['login']}").json()
    names = sorted([legacy["queue"].queue_name, second.queue_name])
    assert permissions["read"] == f"^(?:{names[0]}|{names[1]})$"
    assert queue_exists(legacy["vhost"], second.queue_name)


def test_the_subscription_user_consumes_its_own_queue_over_stomp_as_agent_100_does(legacy):
    # when the user subscribes to /amq/queue/<its queue> and a message is published to it
    bodies = receive_as_agent(
        vhost=legacy["vhost"],
        login=legacy["login"],
        passcode=legacy["password"],
        queue_name=legacy["queue"].queue_name,
        payload='{"object_type": "order"}',
    )

    # then it receives the message
    assert bodies == ['{"object_type": "order"}']


def test_the_subscription_user_consumes_its_own_queue_over_amqp(legacy, amqp):
    # given a message waiting in its queue
    publish(vhost=legacy["vhost"], queue_name=legacy["queue"].queue_name, payload="hello")

    # when the user gets from its queue
    channel = amqp.channel()
    body = wait_until(
        lambda: get_one(channel, legacy["queue"].queue_name),
        timeout=30,
        message="the message in the subscription's queue",
    )

    # then it gets the message
    assert body == b"hello"


def test_the_subscription_user_cannot_declare_a_second_queue(legacy, amqp):
    # given the name of a queue of another offering of its own subscription
    forged = legacy["queue"].queue_name.replace(legacy["queue"].offering.uuid.hex, "f" * 32)

    # when it declares that queue, then the broker refuses and nothing is created
    reason = refusal_of(lambda channel: channel.queue_declare(forged, durable=True), amqp)
    assert "ACCESS_REFUSED" in reason
    assert not queue_exists(legacy["vhost"], forged)
    # and so is a server-named queue
    refusal_of(lambda channel: channel.queue_declare("", exclusive=True), amqp)


def test_the_subscription_user_cannot_redeclare_its_own_queue(legacy, amqp):
    name = legacy["queue"].queue_name

    refusal_of(lambda channel: channel.queue_declare(name, durable=True), amqp)


def test_the_subscription_user_cannot_declare_or_bind_an_exchange(legacy, amqp):
    name = legacy["queue"].queue_name

    refusal_of(lambda channel: channel.exchange_declare(f"{name}.x", exchange_type="fanout"), amqp)
    refusal_of(lambda channel: channel.queue_bind(name, "amq.topic", routing_key="#"), amqp)
    refusal_of(
        lambda channel: channel.exchange_bind("amq.fanout", "amq.topic", routing_key="#"), amqp
    )
    assert management_get(f"exchanges/{legacy['vhost']}/{name}.x").status_code == 404


def test_the_subscription_user_cannot_publish_not_even_to_its_own_queue(legacy, amqp):
    name = legacy["queue"].queue_name

    def publish_confirmed(exchange: str) -> Callable[[Any], None]:
        def publish_on(channel: Any) -> None:
            # With confirms the broker's refusal closes the channel within this call.
            channel.confirm_delivery()
            channel.basic_publish(exchange, name, b"forged")

        return publish_on

    refusal_of(publish_confirmed(""), amqp)
    refusal_of(publish_confirmed("amq.topic"), amqp)
    queue = management_get(f"queues/{legacy['vhost']}/{name}").json()
    assert queue.get("messages", 0) == 0


def test_a_stomp_subscription_that_would_declare_a_queue_is_refused(legacy):
    # given the user logged in over STOMP-over-WebSocket
    connection, listener = connect_agent(
        vhost=legacy["vhost"], login=legacy["login"], passcode=legacy["password"]
    )
    forged = f"{legacy['queue'].queue_name}_extra"
    try:
        # when it subscribes to /queue/<name>, which declares the queue
        connection.subscribe(destination=f"/queue/{forged}", id="forged", ack="auto")

        # then the broker answers with an error and drops the connection, creating nothing
        assert listener.disconnected.wait(timeout=30)
    finally:
        close(connection)
    assert not queue_exists(legacy["vhost"], forged)


def test_reading_another_subscriptions_queue_is_refused(legacy, amqp, identity, owner):
    # given a second agent of the same owner, in the same vhost
    other_identity = AgentIdentityFactory(offering=identity.offering, created_by=owner)
    _, other_queue = provision_agent(other_identity, owner=owner, object_type="resource")

    # when the first subscription's user consumes the other's queue, then the broker refuses
    refusal_of(lambda channel: channel.basic_get(other_queue.queue_name), amqp)
