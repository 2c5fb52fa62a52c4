"""Rights are current on every write: an owner removed from the customer gets 403, also on
what it registered; staff never put their own token into the broker (400); a valid owner
takes over an agent's queue from an owner who is no longer entitled."""

import pytest

from marketplace.models import EventConsumer, EventSubscription
from tests.factories import UserFactory
from tests.kit.api import IDENTITIES, SERVICES, SUBSCRIPTIONS
from tests.kit.revocation import provisioned_consumer, provisioned_subscription
from tests.marketplace.consumers.management import register_queue_url


@pytest.fixture
def removed_owner(identity, owner, customer):
    """The owner who registered the agent, its subscription and its consumer, then was
    removed from the customer."""
    subscription = provisioned_subscription(identity, owner)
    provisioned_consumer(identity, owner)
    customer.owners.remove(owner)
    return owner, subscription


def write_calls(identity, subscription):
    service = identity.services.create(name="event_process")
    return {
        "register_identity": (
            "post",
            IDENTITIES,
            {"offering": identity.offering.uuid.hex, "name": identity.name},
        ),
        "register_service": (
            "post",
            f"{IDENTITIES}{identity.uuid.hex}/register_service/",
            {"name": "s", "mode": "m"},
        ),
        "register_event_subscription": (
            "post",
            f"{IDENTITIES}{identity.uuid.hex}/register_event_subscription/",
            {"observable_object_type": "resource"},
        ),
        "register_queue": ("post", register_queue_url(identity), {}),
        "register_processor": (
            "post",
            f"{SERVICES}{service.uuid.hex}/register_processor/",
            {"name": "p", "backend_type": "slurm"},
        ),
        "set_statistics": (
            "post",
            f"{SERVICES}{service.uuid.hex}/set_statistics/",
            {"statistics": {}},
        ),
        "create_queue": (
            "post",
            f"{SUBSCRIPTIONS}{subscription.uuid.hex}/create_queue/",
            {"offering_uuid": identity.offering.uuid.hex, "object_type": "order"},
        ),
        "delete_subscription": ("delete", f"{SUBSCRIPTIONS}{subscription.uuid.hex}/", None),
        "delete_identity": ("delete", f"{IDENTITIES}{identity.uuid.hex}/", None),
    }


@pytest.mark.parametrize(
    "call",
    [
        "register_identity",
        "register_service",
        "register_event_subscription",
        "register_queue",
        "register_processor",
        "set_statistics",
        "create_queue",
        "delete_subscription",
        "delete_identity",
    ],
)
def test_a_removed_owner_is_refused_every_write_also_on_what_it_registered(
    identity, removed_owner, client_for, broker, call
):
    # given
    user, subscription = removed_owner
    method, path, body = write_calls(identity, subscription)[call]

    # when
    response = getattr(client_for(user), method)(path, body, format="json")

    # then
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert len(broker.calls) == 0


def test_a_removed_owner_sees_nothing_of_the_agent_any_more(identity, removed_owner, client_for):
    user, _ = removed_owner
    client = client_for(user)

    assert client.get(IDENTITIES).json() == []
    assert client.get(SUBSCRIPTIONS).json() == []
    assert client.get(f"{IDENTITIES}{identity.uuid.hex}/").status_code == 403


@pytest.mark.parametrize("path", ["register_event_subscription/", "register_queue/"])
def test_staff_acting_on_a_tenants_agent_are_refused_a_broker_credential(
    identity, staff_user, client_for, broker, path
):
    # when staff, who do not own the agent's customer, register its event queue
    response = client_for(staff_user).post(
        f"{IDENTITIES}{identity.uuid.hex}/{path}",
        {"observable_object_type": "order"},
        format="json",
    )

    # then a 400 in DRF's shape says why, and nothing is written or provisioned
    assert response.status_code == 400
    assert response.json()["code"] == "broker_owner_required"
    assert set(response.json()) == {"detail", "code"}
    assert not EventSubscription.objects.exists()
    assert not EventConsumer.objects.exists()
    assert len(broker.calls) == 0


def test_staff_who_own_the_customer_may_register(
    identity, customer, staff_user, client_for, provisioning_broker
):
    customer.owners.add(staff_user)

    response = client_for(staff_user).post(register_queue_url(identity), {}, format="json")

    assert response.status_code == 201
    assert EventConsumer.objects.get().user == staff_user


def test_an_owner_takes_over_the_queue_of_an_owner_no_longer_entitled(
    identity, owner, customer, client_for, provisioning_broker
):
    # given the agent's consumer, registered by an owner who has since been removed
    former = UserFactory()
    old = provisioned_consumer(identity, former)

    # when a current owner registers the queue
    response = client_for(owner).post(register_queue_url(identity), {}, format="json")

    # then it gets a new consumer with a fresh broker user; the old one is deleted
    assert response.status_code == 201
    new = EventConsumer.objects.get()
    assert (new.user, new.pk != old.pk) == (owner, True)
    assert response.json()["rmq_username"] != old.rmq_username
    deleted = [c.request.url for c in provisioning_broker.calls if c.request.method == "DELETE"]
    assert any(old.rmq_username in url for url in deleted)


def test_an_entitled_other_owners_queue_is_still_a_conflict(
    identity, owner, customer, client_for, provisioning_broker
):
    other = UserFactory()
    customer.owners.add(other)
    provisioned_consumer(identity, other)

    response = client_for(owner).post(register_queue_url(identity), {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "queue_registered_by_another_user"


def test_an_owner_takes_over_a_subscription_of_an_owner_no_longer_entitled(
    identity, owner, client_for, provisioning_broker
):
    # given the agent's order subscription, registered by a former owner
    old = provisioned_subscription(identity, UserFactory())

    # when a current owner registers the same object type
    response = client_for(owner).post(
        f"{IDENTITIES}{identity.uuid.hex}/register_event_subscription/",
        {"observable_object_type": "order"},
        format="json",
    )

    # then a new subscription of the owner replaces it
    assert response.status_code == 201
    new = EventSubscription.objects.get()
    assert (new.user, new.uuid != old.uuid) == (owner, True)
