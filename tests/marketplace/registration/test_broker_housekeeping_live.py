"""Deletions and the broker reconcile on the real RabbitMQ and PostgreSQL: nothing of a
deleted agent stays on the broker, a lost queue comes back, an unexplained queue or user
goes only after the grace period, and other services' objects are never touched."""

import uuid
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from marketplace.models import EventConsumer, EventSubscription
from marketplace.registration.housekeeping import run_reconcile_broker
from rmq.naming import SERVICE_VHOST_TAG, format_consumer_queue_name
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS
from tests.factories import UserFactory
from tests.kit.real_broker import management, provision_agent
from tests.marketplace.consumers.management import register_queue_url

GRACE = 900


@pytest.fixture
def live(real_postgres, real_broker, settings) -> None:
    """The real PostgreSQL and RabbitMQ (cleaned up after the test), a known grace."""
    settings.BROKER_ORPHAN_GRACE_SECONDS = GRACE


@pytest.fixture
def stray_users() -> Iterator[list[str]]:
    """Broker users a test makes behind the service's back; deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        management("DELETE", f"users/{name}")


def exists(path: str) -> bool:
    answer = management("GET", path)
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


def register_consumer(client: APIClient, identity) -> EventConsumer:
    response = client.post(register_queue_url(identity), {}, format="json")
    assert response.status_code == 201, response.content
    return EventConsumer.objects.select_related("user").get(identity=identity)


def declare(vhost: str, name: str) -> None:
    answer = management("PUT", f"queues/{vhost}/{name}", json={"durable": True})
    assert answer.status_code in (201, 204), answer.text


def test_the_owners_vhost_is_tagged_as_the_services(live, identity, owner):
    # when
    provision_agent(identity, owner=owner, object_type="order")

    # then
    vhost = management("GET", f"vhosts/{owner.uuid.hex}").json()
    assert SERVICE_VHOST_TAG in vhost["tags"]


def test_deleting_an_agent_leaves_no_queue_user_or_vhost_of_it(live, identity, owner, owner_client):
    # given a legacy subscription with its queue and an event consumer
    subscription, queue = provision_agent(identity, owner=owner, object_type="order")
    consumer = register_consumer(owner_client, identity)
    vhost = owner.uuid.hex
    assert exists(f"queues/{vhost}/{queue.queue_name}")
    assert exists(f"queues/{vhost}/{consumer.queue_name}")

    # when
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 204
    assert not exists(f"users/{subscription.uuid.hex}")
    assert not exists(f"users/{consumer.rmq_username}")
    assert not exists(f"queues/{vhost}/{queue.queue_name}")
    assert not exists(f"queues/{vhost}/{consumer.queue_name}")
    assert not exists(f"vhosts/{vhost}")


def test_deleting_a_subscription_removes_its_user_and_queue_and_keeps_a_used_vhost(
    live, identity, owner, owner_client
):
    # given a subscription and, of the same owner, an event consumer
    subscription, queue = provision_agent(identity, owner=owner, object_type="order")
    consumer = register_consumer(owner_client, identity)

    # when
    response = owner_client.delete(f"/api/event-subscriptions/{subscription.uuid.hex}/")

    # then the consumer's queue and the vhost stay
    assert response.status_code == 204
    assert not exists(f"users/{subscription.uuid.hex}")
    assert not exists(f"queues/{owner.uuid.hex}/{queue.queue_name}")
    assert exists(f"queues/{owner.uuid.hex}/{consumer.queue_name}")
    assert exists(f"vhosts/{owner.uuid.hex}")


def test_deleting_the_last_consumer_removes_its_user_queue_and_vhost(
    live, identity, owner, owner_client, admin_client
):
    # given
    consumer = register_consumer(owner_client, identity)

    # when
    response = admin_client.post(
        f"/admin/marketplace/eventconsumer/{consumer.pk}/delete/", {"post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert not EventConsumer.objects.exists()
    assert not exists(f"users/{consumer.rmq_username}")
    assert not exists(f"queues/{owner.uuid.hex}/{consumer.queue_name}")
    assert not exists(f"vhosts/{owner.uuid.hex}")


def test_a_queue_deleted_behind_the_services_back_is_declared_again(
    live, identity, owner, owner_client, fake_clock
):
    # given both kinds of queue, deleted on the broker directly
    _, queue = provision_agent(identity, owner=owner, object_type="order")
    consumer = register_consumer(owner_client, identity)
    for name in (queue.queue_name, consumer.queue_name):
        assert management("DELETE", f"queues/{owner.uuid.hex}/{name}").status_code == 204

    # when
    counts = run_reconcile_broker(now=fake_clock.now())

    # then both are back, the consumer's with upstream's arguments
    assert counts["queues_redeclared"] == 2
    legacy = management("GET", f"queues/{owner.uuid.hex}/{queue.queue_name}").json()
    unified = management("GET", f"queues/{owner.uuid.hex}/{consumer.queue_name}").json()
    assert (legacy["durable"], legacy["arguments"]) == (True, {})
    assert (unified["durable"], unified["arguments"]) == (True, CONSUMER_QUEUE_ARGUMENTS)


def test_an_unexplained_queue_and_user_go_only_after_the_grace(
    live, identity, owner, fake_clock, stray_users
):
    # given an own vhost (used by a subscription) with a consumer queue and a 32-hex user
    # that no row names, the user allowed only in that vhost
    provision_agent(identity, owner=owner, object_type="order")
    vhost = owner.uuid.hex
    stray_queue = format_consumer_queue_name(uuid.uuid4().hex)
    stray_user = uuid.uuid4().hex
    stray_users.append(stray_user)
    declare(vhost, stray_queue)
    management("PUT", f"users/{stray_user}", json={"password": "x", "tags": ""})
    management(
        "PUT", f"permissions/{vhost}/{stray_user}", json={"configure": "", "write": "", "read": ""}
    )

    # when it runs, then again just within the grace
    run_reconcile_broker(now=fake_clock.now())
    fake_clock.advance(GRACE - 1)
    within = run_reconcile_broker(now=fake_clock.now())

    # then both are still there
    assert within["orphans_waiting"] == 2
    assert exists(f"queues/{vhost}/{stray_queue}")
    assert exists(f"users/{stray_user}")

    # when the grace has passed
    fake_clock.advance(1)
    after = run_reconcile_broker(now=fake_clock.now())

    # then both are gone, and what the rows explain stays
    assert (after["queues_removed"], after["users_removed"]) == (1, 1)
    assert not exists(f"queues/{vhost}/{stray_queue}")
    assert not exists(f"users/{stray_user}")
    subscription = EventSubscription.objects.get()
    assert exists(f"users/{subscription.uuid.hex}")
    assert exists(f"queues/{vhost}/{subscription.queues.get().queue_name}")


def test_foreign_queues_and_untagged_vhosts_are_never_touched(live, identity, owner, fake_clock):
    # given a queue of another naming in an own vhost, and an untagged vhost (named after a
    # user here) holding a queue of the service's naming
    provision_agent(identity, owner=owner, object_type="order")
    foreign_queue = f"reports_{uuid.uuid4().hex}"
    declare(owner.uuid.hex, foreign_queue)
    untagged = UserFactory().uuid.hex
    assert management("PUT", f"vhosts/{untagged}", json={}).status_code == 201
    stray = format_consumer_queue_name(uuid.uuid4().hex)
    declare(untagged, stray)

    # when it runs twice, far apart
    run_reconcile_broker(now=fake_clock.now())
    fake_clock.advance(GRACE * 10)
    run_reconcile_broker(now=fake_clock.now())

    # then
    assert exists(f"queues/{owner.uuid.hex}/{foreign_queue}")
    assert exists(f"vhosts/{untagged}")
    assert exists(f"queues/{untagged}/{stray}")
