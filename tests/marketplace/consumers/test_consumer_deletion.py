"""Deleting an agent or its event consumer removes the consumer's broker user and queue;
if the broker cannot be asked, nothing is deleted. And the consumer's admin pages."""

import re

import pytest
import responses
from rest_framework.test import APIClient

from marketplace.models import AgentIdentity, EventConsumer
from tests.marketplace.consumers.management import (
    ANY_RESOURCE,
    MANAGEMENT,
    accept_provisioning,
    recorded_calls,
    register_queue_url,
)


@pytest.fixture
def consumer(identity, owner_client, broker) -> EventConsumer:
    """The agent's consumer, registered through the API; the mock's calls are reset."""
    accept_provisioning(broker)
    response = owner_client.post(
        register_queue_url(identity), {"object_types": ["order"]}, format="json"
    )
    assert response.status_code == 201
    broker.reset()
    return EventConsumer.objects.select_related("user").get()


@pytest.fixture
def admin_client(staff_user) -> APIClient:
    staff_user.is_superuser = True
    staff_user.save()
    client = APIClient()
    client.force_login(staff_user)
    return client


def test_deleting_the_agent_removes_its_consumers_broker_user_and_queue(
    identity, consumer, owner_client, broker
):
    # given
    accept_provisioning(broker)

    # when
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 204
    assert not AgentIdentity.objects.exists()
    assert not EventConsumer.objects.exists()
    assert recorded_calls(broker) == [
        ("DELETE", f"/api/users/{consumer.rmq_username}", None),
        ("DELETE", f"/api/queues/{consumer.vhost}/{consumer.queue_name}", None),
        ("GET", "/api/vhosts", None),
        ("DELETE", f"/api/vhosts/{consumer.vhost}", None),
    ]


def test_deleting_the_agent_keeps_it_and_its_consumer_when_the_broker_fails(
    identity, consumer, owner_client, broker
):
    # given
    broker.add(responses.DELETE, ANY_RESOURCE, status=503)

    # when
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert EventConsumer.objects.get() == consumer


def test_admin_lists_consumers_with_owner_broker_user_filter_and_auth(consumer, admin_client):
    # when
    response = admin_client.get("/admin/marketplace/eventconsumer/")

    # then one row with the agent, owner, broker user, filter, and how the owner got in
    assert response.status_code == 200
    cells = dict(
        re.findall(
            r'<t[dh] class="field-(\w+)[^"]*">(?:<a [^>]+>)?([^<]*)<', response.content.decode()
        )
    )
    assert {key: value for key, value in cells.items() if key != "created"} == {
        "identity": consumer.identity.name,
        "user": consumer.user.username,
        "rmq_username": consumer.rmq_username,
        "object_types_display": "order",
        "auth_kind": "Token",
        "authorized_via": "Customer owner",
    }


def test_admin_consumer_page_shows_broker_names_read_only(consumer, admin_client):
    # when
    response = admin_client.get(f"/admin/marketplace/eventconsumer/{consumer.pk}/change/")

    # then the broker names are shown, and none is an input
    assert response.status_code == 200
    page = response.content.decode()
    assert consumer.queue_name in page
    assert consumer.vhost in page
    assert consumer.rmq_username in page
    assert not re.search(r'<input[^>]+name="rmq_username"', page)
    assert admin_client.get("/admin/marketplace/eventconsumer/add/").status_code == 403


def test_admin_agent_page_shows_its_consumer(identity, consumer, admin_client):
    # when
    response = admin_client.get(f"/admin/marketplace/agentidentity/{identity.pk}/change/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert consumer.rmq_username in page
    assert consumer.queue_name in page


def test_admin_deleting_a_consumer_removes_its_broker_user_and_queue(
    consumer, admin_client, broker
):
    # given
    accept_provisioning(broker)

    # when
    response = admin_client.post(
        f"/admin/marketplace/eventconsumer/{consumer.pk}/delete/", {"post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/marketplace/eventconsumer/"
    assert not EventConsumer.objects.exists()
    assert recorded_calls(broker) == [
        ("DELETE", f"/api/users/{consumer.rmq_username}", None),
        ("DELETE", f"/api/queues/{consumer.vhost}/{consumer.queue_name}", None),
        ("GET", "/api/vhosts", None),
        ("DELETE", f"/api/vhosts/{consumer.vhost}", None),
    ]


@pytest.mark.parametrize("model", ["eventconsumer", "agentidentity"])
def test_admin_delete_keeps_the_row_and_says_why_when_the_broker_fails(
    model, consumer, admin_client, broker
):
    # given a broker that refuses every deletion
    broker.add(responses.DELETE, re.compile(rf"{re.escape(MANAGEMENT)}/api/users/.+"), status=503)
    pk = consumer.pk if model == "eventconsumer" else consumer.identity.pk

    # when
    response = admin_client.post(
        f"/admin/marketplace/{model}/{pk}/delete/", {"post": "yes"}, follow=True
    )

    # then the row stays, the admin says why, and does not claim a deletion
    assert response.redirect_chain[0][0] == f"/admin/marketplace/{model}/{pk}/change/"
    assert EventConsumer.objects.get() == consumer
    page = response.content.decode()
    assert "Nothing was deleted: the broker cannot be asked" in page
    assert "deleted successfully" not in page


def test_admin_offers_no_bulk_delete_of_consumers(consumer, admin_client):
    # when
    response = admin_client.get("/admin/marketplace/eventconsumer/")

    # then
    assert response.status_code == 200
    assert 'value="delete_selected"' not in response.content.decode()
