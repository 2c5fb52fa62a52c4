"""Every registration is idempotent, as the real agent repeats it on every start."""

from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
)
from marketplace.names import AgentServiceState
from tests.factories import AgentIdentityFactory, AgentServiceFactory, EventSubscriptionFactory
from tests.kit.api import IDENTITIES, SERVICES, identity_url, subscription_url
from tests.kit.broker import accept_provisioning


def test_registering_the_same_identity_twice_keeps_one_row_and_updates_it(offering, owner_client):
    # given
    first = {"offering": offering.uuid.hex, "name": "agent-a", "version": "1.0.0"}
    second = {**first, "version": "1.1.0"}

    # when
    created = owner_client.post(IDENTITIES, first, format="json")
    repeated = owner_client.post(IDENTITIES, second, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 201)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert repeated.json()["version"] == "1.1.0"
    identity = AgentIdentity.objects.get()
    assert (identity.name, identity.version) == ("agent-a", "1.1.0")


def test_registering_a_service_twice_keeps_one_row_and_makes_it_active(identity, owner_client):
    # given
    url = identity_url(identity, "register_service/")
    body = {"name": "order_processing", "mode": "order_process"}

    # when the service is registered, falls into Error, and is registered again
    created = owner_client.post(url, body, format="json")
    AgentService.objects.update(state=AgentServiceState.ERROR)
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert repeated.json()["state"] == "Active"
    service = AgentService.objects.get()
    assert (service.identity, service.name, service.state) == (
        identity,
        "order_processing",
        "Active",
    )


def test_registering_a_processor_twice_keeps_one_row_and_updates_it(identity, owner_client):
    # given
    service = AgentServiceFactory(identity=identity)
    url = f"{SERVICES}{service.uuid.hex}/register_processor/"
    body = {"name": "OfferingOrderProcessor", "backend_type": "slurm", "backend_version": "23"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, {**body, "backend_version": "24"}, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    processor = AgentProcessor.objects.get()
    assert (processor.service, processor.backend_version) == (service, "24")
    assert processor.last_run is not None


def test_registering_the_same_event_subscription_twice_keeps_one_subscription(
    identity, owner_client, broker
):
    # given
    accept_provisioning(broker)
    url = identity_url(identity, "register_event_subscription/")
    body = {"observable_object_type": "order", "description": "orders"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert EventSubscription.objects.count() == 1
    # the broker side is provisioned again on every call, so a reset broker converges
    assert [call.request.method for call in broker.calls] == ["PUT"] * 12


def test_registering_event_subscriptions_for_two_object_types_makes_two(
    identity, owner_client, broker
):
    # given
    accept_provisioning(broker)
    url = identity_url(identity, "register_event_subscription/")

    # when
    order = owner_client.post(url, {"observable_object_type": "order"}, format="json")
    resource = owner_client.post(url, {"observable_object_type": "resource"}, format="json")

    # then
    assert (order.status_code, resource.status_code) == (201, 201)
    assert order.json()["observable_objects"] == [{"object_type": "order"}]
    assert resource.json()["observable_objects"] == [{"object_type": "resource"}]
    assert sorted(sub.object_types[0] for sub in identity.event_subscriptions.all()) == [
        "order",
        "resource",
    ]


def test_two_agents_of_one_owner_and_offering_each_get_their_own_subscription(
    offering, owner, owner_client, broker
):
    # given two agents of the same owner on the same offering
    accept_provisioning(broker)
    first = AgentIdentityFactory(offering=offering, created_by=owner)
    second = AgentIdentityFactory(offering=offering, created_by=owner)
    body = {"observable_object_type": "order"}

    # when
    one = owner_client.post(
        identity_url(first, "register_event_subscription/"), body, format="json"
    )
    two = owner_client.post(
        identity_url(second, "register_event_subscription/"), body, format="json"
    )

    # then
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["uuid"] != two.json()["uuid"]
    assert one.json()["agent_identity"] == str(first.uuid)
    assert two.json()["agent_identity"] == str(second.uuid)
    assert first.event_subscriptions.count() == 1
    assert second.event_subscriptions.count() == 1


def test_creating_the_same_queue_twice_keeps_one_row(identity, offering, owner_client, broker):
    # given
    accept_provisioning(broker)
    subscription = EventSubscriptionFactory(agent_identity=identity)
    url = subscription_url(subscription, "create_queue/")
    body = {"offering_uuid": offering.uuid.hex, "object_type": "order"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert EventSubscriptionQueue.objects.count() == 1
