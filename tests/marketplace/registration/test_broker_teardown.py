"""Deleting a subscription, an agent, an event consumer or a queue row takes its broker
side along (users, queues, and the owner's vhost once no row uses it and it is the
service's), with the management API mocked: the exact calls, and rows that stay when
the broker fails."""

import pytest
import responses
from rest_framework.test import APIClient

from marketplace.models import (
    AgentIdentity,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
)
from tests.factories import (
    AgentIdentityFactory,
    EventConsumerFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
)
from tests.kit.broker import accept_teardown, answer_vhost_lookups, management_url
from tests.marketplace.consumers.management import recorded_calls


def subscription_url(subscription: EventSubscription) -> str:
    return f"/api/event-subscriptions/{subscription.uuid.hex}/"


def test_deleting_the_last_subscription_removes_its_user_queues_and_the_owners_vhost(
    identity, owner, owner_client, broker
):
    # given a subscription with two queues, the owner's only row on the broker
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    subscription = queue.event_subscription
    other = EventSubscriptionQueueFactory(event_subscription=subscription, object_type="resource")
    accept_teardown(broker)

    # when
    response = owner_client.delete(subscription_url(subscription))

    # then
    assert response.status_code == 204
    vhost = owner.uuid.hex
    assert recorded_calls(broker) == [
        ("DELETE", f"/api/users/{subscription.uuid.hex}", None),
        ("DELETE", f"/api/queues/{vhost}/{queue.queue_name}", None),
        ("DELETE", f"/api/queues/{vhost}/{other.queue_name}", None),
        ("GET", "/api/vhosts", None),
        ("DELETE", f"/api/vhosts/{vhost}", None),
    ]
    assert not EventSubscriptionQueue.objects.exists()


@pytest.mark.parametrize("kept", ["subscription", "consumer"])
def test_deleting_a_subscription_keeps_the_vhost_another_row_of_the_owner_uses(
    kept, identity, owner, owner_client, broker
):
    # given the owner has another subscription or an event consumer
    subscription = EventSubscriptionFactory(agent_identity=identity)
    if kept == "subscription":
        EventSubscriptionFactory(agent_identity=AgentIdentityFactory(created_by=owner))
    else:
        EventConsumerFactory(identity=AgentIdentityFactory(created_by=owner))
    accept_teardown(broker)

    # when
    response = owner_client.delete(subscription_url(subscription))

    # then the user goes, the vhost is neither looked up nor deleted
    assert response.status_code == 204
    assert recorded_calls(broker) == [("DELETE", f"/api/users/{subscription.uuid.hex}", None)]


def test_an_unused_vhost_without_the_services_tag_is_left_alone(
    identity, owner, owner_client, broker
):
    # given the owner's vhost was made before the service tagged its vhosts
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), status=204)
    answer_vhost_lookups(broker, tags=())

    # when
    response = owner_client.delete(subscription_url(subscription))

    # then
    assert response.status_code == 204
    assert [method for method, _, _ in recorded_calls(broker)] == ["DELETE", "GET"]


def test_deleting_an_agent_removes_every_user_queue_and_the_vhosts_of_its_owners(
    identity, owner, owner_client, staff_user, broker
):
    # given subscriptions of two owners and an event consumer of the first
    mine = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    theirs = EventSubscriptionFactory(agent_identity=identity, user=staff_user)
    consumer = EventConsumerFactory(identity=identity, user=owner)
    accept_teardown(broker)

    # when
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 204
    calls = recorded_calls(broker)
    assert set(calls) == {
        ("DELETE", f"/api/users/{mine.event_subscription.uuid.hex}", None),
        ("DELETE", f"/api/users/{theirs.uuid.hex}", None),
        ("DELETE", f"/api/queues/{owner.uuid.hex}/{mine.queue_name}", None),
        ("DELETE", f"/api/users/{consumer.rmq_username}", None),
        ("DELETE", f"/api/queues/{owner.uuid.hex}/{consumer.queue_name}", None),
        ("GET", "/api/vhosts", None),
        ("DELETE", f"/api/vhosts/{owner.uuid.hex}", None),
        ("DELETE", f"/api/vhosts/{staff_user.uuid.hex}", None),
    }
    # users first (the broker closes their connections), vhosts last
    assert calls[0][1].startswith("/api/users/")
    assert calls[-1][1].startswith("/api/vhosts/")
    assert not AgentIdentity.objects.exists()


def test_a_failing_queue_deletion_keeps_every_row_and_answers_503(identity, owner_client, broker):
    # given
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), status=204)
    broker.add(responses.DELETE, management_url("queues"), status=503)

    # when
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert EventSubscriptionQueue.objects.get() == queue
    assert AgentIdentity.objects.filter(pk=identity.pk).exists()


def test_a_failing_vhost_deletion_keeps_the_consumer(identity, owner, broker):
    # given
    consumer = EventConsumerFactory(identity=identity, user=owner)
    broker.add(responses.DELETE, management_url("users"), status=204)
    broker.add(responses.DELETE, management_url("queues"), status=204)
    answer_vhost_lookups(broker)
    broker.add(responses.DELETE, management_url("vhosts"), status=500)
    client = APIClient()
    client.force_authenticate(owner)

    # when
    response = client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 503
    assert EventConsumer.objects.get() == consumer


def test_admin_deleting_a_subscription_removes_its_broker_side(identity, admin_client, broker):
    # given
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    subscription = queue.event_subscription
    accept_teardown(broker)

    # when
    response = admin_client.post(
        f"/admin/marketplace/eventsubscription/{subscription.pk}/delete/", {"post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert not EventSubscription.objects.exists()
    assert ("DELETE", f"/api/users/{subscription.uuid.hex}", None) in recorded_calls(broker)
    assert ("DELETE", f"/api/queues/{queue.vhost}/{queue.queue_name}", None) in recorded_calls(
        broker
    )


def test_admin_deleting_a_queue_row_deletes_the_broker_queue_only(identity, admin_client, broker):
    # given
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    accept_teardown(broker)

    # when
    response = admin_client.post(
        f"/admin/marketplace/eventsubscriptionqueue/{queue.pk}/delete/", {"post": "yes"}
    )

    # then the subscription (and so its vhost) stays
    assert response.status_code == 302
    assert recorded_calls(broker) == [
        ("DELETE", f"/api/queues/{queue.vhost}/{queue.queue_name}", None)
    ]
    assert not EventSubscriptionQueue.objects.exists()
    assert EventSubscription.objects.filter(pk=queue.event_subscription.pk).exists()


@pytest.mark.parametrize("model", ["eventsubscription", "eventsubscriptionqueue"])
def test_admin_keeps_the_row_when_the_broker_fails(model, identity, admin_client, broker):
    # given
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), status=503)
    broker.add(responses.DELETE, management_url("queues"), status=503)
    pk = queue.event_subscription.pk if model == "eventsubscription" else queue.pk

    # when
    response = admin_client.post(
        f"/admin/marketplace/{model}/{pk}/delete/", {"post": "yes"}, follow=True
    )

    # then
    assert "Nothing was deleted: the broker cannot be asked" in response.content.decode()
    assert EventSubscriptionQueue.objects.get() == queue


def test_admin_offers_no_inline_deletion_of_subscriptions_or_queues(identity, admin_client):
    # given
    queue = EventSubscriptionQueueFactory(event_subscription__agent_identity=identity)

    # when
    agent_page = admin_client.get(f"/admin/marketplace/agentidentity/{identity.pk}/change/")
    subscription_page = admin_client.get(
        f"/admin/marketplace/eventsubscription/{queue.event_subscription.pk}/change/"
    )

    # then no row of theirs can be deleted without the broker
    assert agent_page.status_code == subscription_page.status_code == 200
    assert "event_subscriptions-0-DELETE" not in agent_page.content.decode()
    assert "queues-0-DELETE" not in subscription_page.content.decode()
