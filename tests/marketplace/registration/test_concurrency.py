"""Concurrent repeats of a registration converge on one row (the real PostgreSQL)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from marketplace.models import AgentIdentity, AgentService, EventSubscriptionQueue
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory

THREADS = 50  # two waves of 50 make 100 calls; PostgreSQL allows 100 connections
CALLS = 100


def hammer(url: str, token: str, body: dict) -> list[int]:
    """POST the same body CALLS times from THREADS threads released together."""
    barrier = threading.Barrier(THREADS)

    def post(index: int) -> int:
        if index < THREADS:
            barrier.wait(timeout=30)
        response = requests.post(
            url, json=body, headers={"Authorization": f"Token {token}"}, timeout=60
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(post, range(CALLS)))


@pytest.fixture
def owner_world(transactional_db, real_postgres, settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    return owner, offering, Token.objects.get(user=owner).key


def test_concurrent_identical_identity_registrations_make_one_row(live_server, owner_world):
    _, offering, token = owner_world

    codes = hammer(
        f"{live_server.url}/api/marketplace-site-agent-identities/",
        token,
        {"offering": str(offering.uuid), "name": "agent-x", "version": "1.0.0"},
    )

    assert set(codes) == {201}
    assert AgentIdentity.objects.filter(offering=offering, name="agent-x").count() == 1


def test_concurrent_register_service_for_one_name_makes_one_row(live_server, owner_world):
    owner, offering, token = owner_world
    identity = AgentIdentityFactory(offering=offering, created_by=owner)

    codes = hammer(
        f"{live_server.url}/api/marketplace-site-agent-identities/{identity.uuid.hex}"
        "/register_service/",
        token,
        {"name": "order_process", "mode": "order_process"},
    )

    assert sorted(set(codes)) == [200, 201]
    assert codes.count(201) == 1
    assert AgentService.objects.filter(identity=identity).count() == 1


def test_concurrent_create_queue_makes_one_row_and_one_queue(live_server, owner_world, real_broker):
    owner, offering, token = owner_world
    identity = AgentIdentityFactory(offering=offering, created_by=owner)
    registered = requests.post(
        f"{live_server.url}/api/marketplace-site-agent-identities/{identity.uuid.hex}"
        "/register_event_subscription/",
        json={"observable_object_type": "order"},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    assert registered.status_code == 201
    subscription_hex = registered.json()["uuid"].replace("-", "")

    codes = hammer(
        f"{live_server.url}/api/event-subscriptions/{subscription_hex}/create_queue/",
        token,
        {"offering_uuid": str(offering.uuid), "object_type": "order"},
    )

    assert sorted(set(codes)) == [200, 201]
    assert codes.count(201) == 1
    assert EventSubscriptionQueue.objects.count() == 1
    vhost_queues = requests.get(
        f"{real_broker}/api/queues/{owner.uuid.hex}",
        auth=(django_settings.RABBITMQ_USER, django_settings.RABBITMQ_PASSWORD),
        timeout=5,
    ).json()
    assert [queue["name"] for queue in vhost_queues] == [
        f"subscription_{subscription_hex}_offering_{offering.uuid.hex}_order"
    ]
