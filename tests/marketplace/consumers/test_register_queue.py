"""register_queue: one consumer per agent, its filter, its answer and the broker calls it
makes, with the management API mocked at the HTTP level."""

import re

import pytest
import requests
import responses
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace.models import AgentConnectionState, EventConsumer
from rmq.naming import SERVICE_VHOST_METADATA
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS
from tests.factories import UserFactory
from tests.marketplace.consumers.management import (
    ANY_RESOURCE,
    MANAGEMENT,
    accept_provisioning,
    recorded_calls,
    register_queue_url,
)

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_first_register_queue_creates_the_consumer_and_answers_201_with_its_broker_names(
    identity, owner, owner_client, broker
):
    # given
    accept_provisioning(broker)

    # when
    response = owner_client.post(
        register_queue_url(identity),
        {"object_types": ["order", "resource_api_key_rotation"]},
        format="json",
    )

    # then
    assert response.status_code == 201
    consumer = EventConsumer.objects.get()
    assert (consumer.identity, consumer.user) == (identity, owner)
    assert response.json() == {
        "rmq_username": consumer.rmq_username,
        "queue_name": f"consumer_{consumer.uuid.hex}",
        "vhost": owner.uuid.hex,
        "observable_object_types": ["order", "resource_api_key_rotation"],
    }
    # the broker username is random, not the consumer's uuid
    assert HEX32.fullmatch(consumer.rmq_username)
    assert consumer.rmq_username != consumer.uuid.hex


def test_register_queue_provisions_vhost_queue_user_and_read_only_permission(
    identity, owner, owner_client, broker, settings
):
    # given
    accept_provisioning(broker)

    # when
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then exactly these management calls were made, in this order
    assert response.status_code == 201
    consumer = EventConsumer.objects.get()
    vhost, queue, username = owner.uuid.hex, consumer.queue_name, consumer.rmq_username
    token = Token.objects.get(user=owner).key
    headroom = settings.RABBITMQ_VHOST_LIMIT_HEADROOM
    assert recorded_calls(broker) == [
        ("PUT", f"/api/vhosts/{vhost}", SERVICE_VHOST_METADATA),
        (
            "PUT",
            f"/api/permissions/{vhost}/{settings.RABBITMQ_USER}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        ),
        # its own queue and one broker user, plus the headroom, before the queue is declared
        ("PUT", f"/api/vhost-limits/{vhost}/max-queues", {"value": 1 + headroom}),
        (
            "PUT",
            f"/api/vhost-limits/{vhost}/max-connections",
            {"value": settings.RABBITMQ_CONNECTIONS_PER_BROKER_USER + headroom},
        ),
        (
            "PUT",
            f"/api/queues/{vhost}/{queue}",
            {
                "durable": True,
                "auto_delete": False,
                "arguments": {
                    "x-message-ttl": 3600000,
                    "x-max-length": 10000,
                    "x-overflow": "reject-publish-dlx",
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": "waldur.dlq.messages",
                },
            },
        ),
        ("PUT", f"/api/users/{username}", {"password": token, "tags": ""}),
        (
            "PUT",
            f"/api/permissions/{vhost}/{username}",
            {"configure": "^$", "write": "^$", "read": f"^consumer_{consumer.uuid.hex}$"},
        ),
    ]
    assert recorded_calls(broker)[4][2]["arguments"] == CONSUMER_QUEUE_ARGUMENTS


def test_repeat_register_queue_by_the_owner_answers_200_and_provisions_everything_again(
    identity, owner, owner_client, broker
):
    # given a registered consumer
    accept_provisioning(broker)
    first = owner_client.post(register_queue_url(identity), {}, format="json")
    calls_of_first = recorded_calls(broker)
    broker.calls.reset()

    # when the agent registers again (it does at every start)
    again = owner_client.post(register_queue_url(identity), {}, format="json")

    # then the same consumer answers, and every broker object is PUT again
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert EventConsumer.objects.count() == 1
    assert recorded_calls(broker) == calls_of_first


def test_repeat_register_queue_with_a_rotated_token_sets_the_new_token_as_password(
    identity, owner, client_for, broker
):
    # given a consumer registered with the owner's first token
    accept_provisioning(broker)
    first = client_for(owner).post(register_queue_url(identity), {}, format="json")
    assert first.status_code == 201
    Token.objects.filter(user=owner).delete()
    broker.calls.reset()

    # when the agent registers again with a new token
    response = client_for(owner).post(register_queue_url(identity), {}, format="json")

    # then the broker user's password is the new token
    assert response.status_code == 200
    new_token = Token.objects.get(user=owner).key
    consumer = EventConsumer.objects.get()
    assert ("PUT", f"/api/users/{consumer.rmq_username}", {"password": new_token, "tags": ""}) in (
        recorded_calls(broker)
    )


@pytest.mark.parametrize(
    ("bodies", "expected"),
    [
        pytest.param([{}], [], id="omitted-on-creation-means-all"),
        pytest.param([{"object_types": []}], [], id="empty-means-all"),
        pytest.param([{"object_types": ["order"]}, {}], ["order"], id="omitted-keeps-filter"),
        pytest.param(
            [{"object_types": ["order"]}, {"object_types": []}], [], id="empty-resets-to-all"
        ),
        pytest.param(
            [{"object_types": ["order"]}, {"object_types": ["user_role", "resource"]}],
            ["user_role", "resource"],
            id="list-replaces-filter",
        ),
        pytest.param(
            [{"object_types": ["order", "resource", "order"]}],
            ["order", "resource"],
            id="duplicates-count-once",
        ),
    ],
)
def test_register_queue_object_types_filter(bodies, expected, identity, owner_client, broker):
    # given
    accept_provisioning(broker)

    # when the agent registers with each body in turn
    responses_ = [
        owner_client.post(register_queue_url(identity), body, format="json") for body in bodies
    ]

    # then the stored filter, and the answer, is the expected list
    assert responses_[-1].status_code in (200, 201)
    assert responses_[-1].json()["observable_object_types"] == expected
    assert EventConsumer.objects.get().object_types == expected


@pytest.mark.parametrize(
    ("body", "expected_errors"),
    [
        pytest.param(
            {"object_types": ["order", "no_such_type"]},
            {"object_types": {"1": ['"no_such_type" is not a valid choice.']}},
            id="unknown-type",
        ),
        pytest.param(
            {"object_types": "order"},
            {"object_types": ['Expected a list of items but got type "str".']},
            id="not-a-list",
        ),
        pytest.param(
            {"object_types": None}, {"object_types": ["This field may not be null."]}, id="null"
        ),
    ],
)
def test_register_queue_with_bad_object_types_is_a_400_and_writes_nothing(
    body, expected_errors, identity, owner_client, broker
):
    # when
    response = owner_client.post(register_queue_url(identity), body, format="json")

    # then DRF's field errors, no consumer and no broker call
    assert response.status_code == 400
    assert response.json() == expected_errors
    assert EventConsumer.objects.count() == 0
    assert len(broker.calls) == 0


def test_bad_object_types_on_a_repeat_keep_the_stored_filter(identity, owner_client, broker):
    # given
    accept_provisioning(broker)
    owner_client.post(register_queue_url(identity), {"object_types": ["order"]}, format="json")

    # when
    response = owner_client.post(
        register_queue_url(identity),
        {"object_types": ["order", "service_provider_project_group", "bogus"]},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert EventConsumer.objects.get().object_types == ["order"]


def test_register_queue_by_another_owner_is_a_409_and_writes_nothing(
    identity, owner, owner_client, customer, client_for, broker
):
    # given the agent's queue registered by one owner of its customer
    accept_provisioning(broker)
    owner_client.post(register_queue_url(identity), {"object_types": ["order"]}, format="json")
    before = EventConsumer.objects.values().get()
    other_owner = UserFactory()
    customer.owners.add(other_owner)
    broker.calls.reset()

    # when another owner registers it
    response = client_for(other_owner).post(
        register_queue_url(identity), {"object_types": ["resource"]}, format="json"
    )

    # then a conflict in DRF's shape; the consumer and the broker are untouched
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Another user registered this agent's event queue; it stays theirs until "
        "the agent or its event consumer is deleted.",
        "code": "queue_registered_by_another_user",
    }
    assert EventConsumer.objects.values().get() == before
    assert len(broker.calls) == 0


BROKER_FAILURES = [
    pytest.param({"body": requests.ConnectionError("refused")}, id="refused"),
    pytest.param({"body": requests.ReadTimeout("read timed out")}, id="timeout"),
    pytest.param({"status": 500}, id="http-500"),
    pytest.param({"status": 401}, id="http-401"),
]


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_register_queue_answers_503_and_writes_nothing_when_the_broker_fails(
    failure, identity, owner, owner_client, broker
):
    # given a broker that creates the vhost and the queue, then fails on the user
    users = re.compile(rf"{re.escape(MANAGEMENT)}/api/users/.+")
    broker.add(responses.PUT, users, **failure)
    broker.add(responses.PUT, ANY_RESOURCE, status=201)

    # when
    response = owner_client.post(
        register_queue_url(identity), {"object_types": ["order"]}, format="json"
    )

    # then 503 in DRF's shape, without the token, and no consumer row
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert set(response.json()) == {"detail", "code"}
    assert Token.objects.get(user=owner).key not in response.content.decode()
    assert EventConsumer.objects.count() == 0

    # and when the broker is back, a retry creates exactly one consumer
    broker.reset()
    accept_provisioning(broker)
    retry = owner_client.post(
        register_queue_url(identity), {"object_types": ["order"]}, format="json"
    )
    assert retry.status_code == 201
    assert EventConsumer.objects.get().object_types == ["order"]


def test_register_queue_broker_failure_on_a_repeat_keeps_the_stored_consumer(
    identity, owner, owner_client, broker
):
    # given a consumer that filters orders, registered by token
    accept_provisioning(broker)
    owner_client.post(register_queue_url(identity), {"object_types": ["order"]}, format="json")
    before = EventConsumer.objects.values().get()

    # when a repeat asks for another filter and the broker fails
    broker.reset()
    broker.add(responses.PUT, ANY_RESOURCE, status=503)
    session_client = APIClient()
    session_client.force_login(owner)
    response = session_client.post(
        register_queue_url(identity), {"object_types": ["resource"]}, format="json"
    )

    # then nothing changed: neither the filter nor how the caller got in
    assert response.status_code == 503
    assert EventConsumer.objects.values().get() == before


def test_register_queue_refreshes_the_agents_last_seen(identity, owner_client, broker):
    # given an agent never seen
    accept_provisioning(broker)
    assert not AgentConnectionState.objects.filter(identity=identity, last_seen__isnull=False)

    # when the agent registers its queue
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then it was seen
    assert response.status_code == 201
    assert AgentConnectionState.objects.get(identity=identity).last_seen is not None
