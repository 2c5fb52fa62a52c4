"""A broker outage on the write path is a 503 with code `broker_unavailable` and writes
nothing, so a retry converges."""

import pytest
import requests
import responses
from rest_framework.authtoken.models import Token

from marketplace.models import AgentIdentity, EventSubscription, EventSubscriptionQueue
from tests.factories import EventSubscriptionFactory
from tests.kit.api import identity_url, subscription_url
from tests.kit.broker import accept_provisioning, management_url

BROKER_FAILURES = [
    pytest.param(lambda: {"body": requests.ConnectionError("refused")}, id="refused"),
    pytest.param(lambda: {"body": requests.ReadTimeout("read timed out")}, id="timeout"),
    pytest.param(lambda: {"status": 500}, id="http-500"),
    pytest.param(lambda: {"status": 401}, id="http-401"),
]


def _assert_broker_unavailable(response, *, token: str) -> None:
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "broker_unavailable"
    assert body["detail"].startswith("The message broker cannot be asked right now")
    assert token not in response.content.decode()


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_register_event_subscription_fails_with_503_and_writes_nothing_when_broker_fails(
    failure, identity, owner, owner_client, broker
):
    # given a broker that creates the vhost and permissions, then fails on the user
    broker.add(responses.PUT, management_url("vhosts"), status=201)
    broker.add(responses.PUT, management_url("permissions"), status=201)
    broker.add(responses.PUT, management_url("users"), **failure())
    url = identity_url(identity, "register_event_subscription/")
    body = {"observable_object_type": "order", "description": "orders"}

    # when
    response = owner_client.post(url, body, format="json")

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscription.objects.count() == 0

    # and when the broker is back, a retry creates exactly one subscription
    broker.reset()
    accept_provisioning(broker)
    retry = owner_client.post(url, body, format="json")
    assert retry.status_code == 201
    subscription = EventSubscription.objects.get()
    assert retry.json()["uuid"] == str(subscription.uuid)
    assert subscription.agent_identity == identity
    assert subscription.object_types == ["order"]


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_create_queue_fails_with_503_and_writes_nothing_when_broker_fails(
    failure, identity, offering, owner, owner_client, broker
):
    # given
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.PUT, management_url("queues"), **failure())
    for resource in ("vhosts", "vhost-limits", "permissions", "users"):
        broker.add(responses.PUT, management_url(resource), status=201)
    url = subscription_url(subscription, "create_queue/")
    body = {"offering_uuid": offering.uuid.hex, "object_type": "order"}

    # when
    response = owner_client.post(url, body, format="json")

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscriptionQueue.objects.count() == 0

    # and when the broker is back, a retry creates exactly one queue
    broker.reset()
    accept_provisioning(broker)
    retry = owner_client.post(url, body, format="json")
    assert retry.status_code == 201
    queue = EventSubscriptionQueue.objects.get()
    expected_name = f"subscription_{subscription.uuid.hex}_offering_{offering.uuid.hex}_order"
    assert retry.json()["queue_name"] == expected_name
    assert retry.json()["vhost"] == owner.uuid.hex
    assert (queue.event_subscription, queue.offering, queue.object_type) == (
        subscription,
        offering,
        "order",
    )
    # the queue is declared last, after the vhost limits and the user's permission
    assert broker.calls[-1].request.url.endswith(f"/api/queues/{owner.uuid.hex}/{expected_name}")


def test_delete_event_subscription_keeps_the_row_when_broker_fails(
    identity, owner, owner_client, broker
):
    # given
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), status=503)

    # when
    response = owner_client.delete(subscription_url(subscription))

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscription.objects.filter(pk=subscription.pk).exists()


def test_delete_identity_keeps_the_agent_when_broker_fails(identity, owner, owner_client, broker):
    # given an agent with a subscription whose broker user cannot be removed
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), body=requests.ConnectionError("x"))

    # when
    response = owner_client.delete(identity_url(identity))

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert AgentIdentity.objects.filter(pk=identity.pk).exists()
    assert EventSubscription.objects.filter(pk=subscription.pk).exists()
    assert broker.calls[0].request.url.endswith(f"/api/users/{subscription.uuid.hex}")
