"""Revocation on the real RabbitMQ and PostgreSQL, proven with real log-ins (STOMP over
WebSocket, as the agents use, and AMQP with pika): an old token is refused within 60 s of
rotation and its open connections are closed; a deactivated or removed owner loses the
broker and the API; the sweep alone revokes when the immediate path did not run."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
import pytest
from rest_framework.authtoken.models import Token

from marketplace.models import EventConsumer, EventSubscription
from marketplace.registration.revocation import run_revoke_broker_credentials
from marketplace.registration.revocation_signals import (
    connect_revocation_signals,
    disconnect_revocation_signals,
)
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import identity_url, subscription_url
from tests.kit.polling import wait_until
from tests.kit.revocation import deactivate, rotate_token, token_key
from tests.kit.stomp_agent import can_log_in, close, connect_agent

REVOCATION_DEADLINE = 60


@pytest.fixture
def agent(real_broker, real_postgres) -> Any:
    """An agent whose customer's owner registers it."""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    return AgentIdentityFactory(offering=offering, created_by=owner)


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Connections a test opens; closed afterwards if the broker left them open."""
    connections: list[Any] = []
    yield connections
    for connection in connections:
        if isinstance(connection, pika.BlockingConnection):
            if connection.is_open:
                connection.close()
        else:
            close(connection)


def register_queue(client: Any, identity: Any) -> dict[str, Any]:
    response = client.post(identity_url(identity, "register_queue/"), {}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def subscribe(client: Any, identity: Any, object_type: str) -> Any:
    """POST register_event_subscription as the agent does; the answer."""
    return client.post(
        identity_url(identity, "register_event_subscription/"),
        {"observable_object_type": object_type},
        format="json",
    )


def amqp_connect(*, vhost: str, login: str, password: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            "127.0.0.1",
            5672,
            vhost,
            pika.PlainCredentials(login, password),
            blocked_connection_timeout=30,
        )
    )


def amqp_can_log_in(*, vhost: str, login: str, password: str) -> bool:
    try:
        amqp_connect(vhost=vhost, login=login, password=password).close()
    except pika.exceptions.AMQPConnectionError:
        return False
    return True


def amqp_is_closed(connection: pika.BlockingConnection) -> bool:
    try:
        connection.process_data_events(time_limit=0.2)
    except pika.exceptions.AMQPError:
        return True
    return not connection.is_open


def open_both(queue: dict[str, Any], password: str, opened: list[Any]) -> tuple[Any, Any, Any]:
    """An agent's STOMP connection (subscribed to its queue) and an AMQP one, logged in."""
    login = {"vhost": queue["vhost"], "login": queue["rmq_username"]}
    stomp_connection, listener = connect_agent(**login, passcode=password)
    opened.append(stomp_connection)
    stomp_connection.subscribe(
        destination=f"/amq/queue/{queue['queue_name']}", id=queue["queue_name"], ack="auto"
    )
    amqp = amqp_connect(vhost=queue["vhost"], login=queue["rmq_username"], password=password)
    opened.append(amqp)
    return stomp_connection, listener, amqp


def assert_revoked(queue: dict[str, Any], password: str, listener: Any, amqp: Any) -> None:
    """Within 60 s the password logs in nowhere and both open connections are closed."""
    login = {"vhost": queue["vhost"], "login": queue["rmq_username"]}
    wait_until(
        lambda: not can_log_in(**login, passcode=password),
        timeout=REVOCATION_DEADLINE,
        message="the old token is refused over STOMP",
    )
    assert not amqp_can_log_in(**login, password=password)
    wait_until(
        listener.disconnected.is_set,
        timeout=REVOCATION_DEADLINE,
        message="the open STOMP connection is closed",
    )
    wait_until(
        lambda: amqp_is_closed(amqp),
        timeout=REVOCATION_DEADLINE,
        message="the open AMQP connection is closed",
    )


def test_a_rotated_token_is_refused_and_the_new_one_works_after_re_registering(
    agent, client_for, opened, django_capture_on_commit_callbacks
):
    # given the agent's queue registered by its owner, consumed over STOMP and AMQP
    owner = agent.created_by
    old_key = token_key(owner)
    queue = register_queue(client_for(owner), agent)
    _, listener, amqp = open_both(queue, old_key, opened)

    # when the owner's token is rotated
    with django_capture_on_commit_callbacks(execute=True):
        new_key = rotate_token(owner)

    # then the old token is refused and its connections are closed
    assert_revoked(queue, old_key, listener, amqp)

    # when the agent re-registers with its new token, then the new token logs in
    again = register_queue(client_for(owner), agent)
    assert again["rmq_username"] == queue["rmq_username"]
    login = {"vhost": queue["vhost"], "login": queue["rmq_username"]}
    assert can_log_in(**login, passcode=new_key)
    assert amqp_can_log_in(**login, password=new_key)


def test_a_deactivated_owner_loses_its_legacy_subscription_on_the_broker(
    agent, client_for, opened, django_capture_on_commit_callbacks
):
    # given a legacy subscription and queue the owner registered, consumed over STOMP
    owner = agent.created_by
    key = token_key(owner)
    client = client_for(owner)
    assert subscribe(client, agent, "order").status_code == 201
    subscription = EventSubscription.objects.get()
    made = client.post(
        subscription_url(subscription, "create_queue/"),
        {"offering_uuid": agent.offering.uuid.hex, "object_type": "order"},
        format="json",
    )
    assert made.status_code == 201
    queue = {
        "vhost": owner.uuid.hex,
        "rmq_username": subscription.uuid.hex,
        "queue_name": made.json()["queue_name"],
    }
    _, listener, amqp = open_both(queue, key, opened)

    # when the owner is deactivated
    with django_capture_on_commit_callbacks(execute=True):
        deactivate(owner)

    # then its token logs in nowhere, its connections are closed and the row is gone
    assert_revoked(queue, key, listener, amqp)
    assert not EventSubscription.objects.exists()


def test_a_removed_owner_gets_403_and_can_no_longer_log_in(
    agent, client_for, opened, django_capture_on_commit_callbacks
):
    # given the owner's queue and legacy subscription, consumed over STOMP and AMQP, and a
    # subscription of another owner of the customer
    owner = agent.created_by
    other_owner = UserFactory()
    agent.offering.customer.owners.add(other_owner)
    key = token_key(owner)
    client = client_for(owner)
    queue = register_queue(client, agent)
    assert subscribe(client, agent, "order").status_code == 201
    subscription = EventSubscription.objects.get()
    kept = subscribe(client_for(other_owner), agent, "resource")
    assert kept.status_code == 201
    _, listener, amqp = open_both(queue, key, opened)

    # when it is removed from the customer's owners
    with django_capture_on_commit_callbacks(execute=True):
        agent.offering.customer.owners.remove(owner)

    # then the broker refuses it and closes its connections
    assert_revoked(queue, key, listener, amqp)
    assert not EventConsumer.objects.exists()
    assert list(EventSubscription.objects.values_list("user", flat=True)) == [other_owner.pk]
    # and every write on the agent is a 403 (what it registered is gone: a 404)
    refused = [
        client.post(identity_url(agent, "register_queue/"), {}, format="json"),
        subscribe(client, agent, "resource"),
        client.post(identity_url(agent, "register_service/"), {"name": "s"}, format="json"),
        client.post(
            f"/api/event-subscriptions/{kept.json()['uuid'].replace('-', '')}/create_queue/",
            {"offering_uuid": agent.offering.uuid.hex, "object_type": "resource"},
            format="json",
        ),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403, 403]
    gone = client.post(
        subscription_url(subscription, "create_queue/"),
        {"offering_uuid": agent.offering.uuid.hex, "object_type": "order"},
        format="json",
    )
    assert gone.status_code == 404


@pytest.mark.parametrize("immediate_path", ["signals_disconnected", "broker_down_at_commit"])
def test_the_sweep_alone_revokes_a_rotated_token(
    agent, client_for, opened, django_capture_on_commit_callbacks, settings, immediate_path
):
    # given the owner's queue consumed over STOMP and AMQP
    owner = agent.created_by
    old_key = token_key(owner)
    queue = register_queue(client_for(owner), agent)
    _, listener, amqp = open_both(queue, old_key, opened)

    # when the token is rotated while the immediate path cannot act
    if immediate_path == "signals_disconnected":
        disconnect_revocation_signals()
        try:
            new_key = rotate_token(owner)
        finally:
            connect_revocation_signals()
    else:
        management_url = settings.RABBITMQ_MANAGEMENT_URL
        settings.RABBITMQ_MANAGEMENT_URL = "http://127.0.0.1:9"  # nothing listens
        with django_capture_on_commit_callbacks(execute=True):
            new_key = rotate_token(owner)
        settings.RABBITMQ_MANAGEMENT_URL = management_url
    login = {"vhost": queue["vhost"], "login": queue["rmq_username"]}
    assert can_log_in(**login, passcode=old_key)

    # when the sweep runs
    counts = run_revoke_broker_credentials(now=datetime.now(tz=UTC))

    # then it revoked the old token and closed both connections
    assert counts["rotated"] == 1
    assert_revoked(queue, old_key, listener, amqp)
    assert Token.objects.get(user=owner).key == new_key
    assert amqp_can_log_in(**login, password=new_key)
