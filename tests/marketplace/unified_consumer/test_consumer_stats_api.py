"""The connection-stats API for agents with a unified event consumer: the consumer's keys,
the owner it is reported under, why delivery is blocked, its cost, and the real SDK."""

from typing import Any

import pytest
import responses
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from waldur_api_client.models import AgentConnectionStatsResponse
from waldur_api_client.models.auth_kind_enum import AuthKindEnum
from waldur_api_client.models.authorized_via_enum import AuthorizedViaEnum
from waldur_api_client.models.queue_kind_enum import QueueKindEnum

from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    EventConsumerFactory,
    EventSubscriptionQueueFactory,
    UserFactory,
)
from tests.kit.broker import SNAPSHOT_CALLS, consumer_login, consumer_queue, mock_broker_snapshot

URL = "/api/marketplace-site-agent-connection-stats/"
MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
# token, agents, services, subscriptions, queues, event consumers
STATS_QUERIES = 6


def ask(client, broker: responses.RequestsMock, *, connections=(), queues=(), path: str = URL):
    broker.reset()
    cache.clear()
    mock_broker_snapshot(
        broker, base=MANAGEMENT, connections=list(connections), queues=list(queues)
    )
    return client.get(path)


@pytest.fixture
def manager(customer):
    """A second owner of the customer: it registered the consumer of an agent it did not
    create."""
    user = UserFactory(first_name="Grace", last_name="Hopper")
    customer.owners.add(user)
    return user


def test_consumer_agent_is_reported_under_the_consumers_owner_with_its_registration(
    identity, manager, support_user, client_for, broker
):
    # given an agent created by `owner` whose consumer `manager` registered with a token
    consumer = EventConsumerFactory(
        identity=identity, user=manager, auth_token_name="", auth_token_prefix="9f8e7d6c"
    )

    # when its queue has one consumer
    response = ask(
        client_for(support_user), broker, queues=[consumer_queue(consumer, messages=2, consumers=1)]
    )

    # then
    assert response.status_code == 200
    (agent,) = response.json()["agents"]
    assert {key: agent[key] for key in list(agent)[6:17]} == {
        "connected": True,
        "event_consumer_uuid": str(consumer.uuid),
        "user_uuid": str(manager.uuid),
        "user_username": manager.username,
        "user_full_name": f"Grace {manager.last_name}",
        "user_is_staff": False,
        "auth_kind": "token",
        "auth_token_prefix": "9f8e7d6c",
        "auth_token_name": None,
        "authorized_via": "customer_owner",
        "delivery_blocked_reason": None,
    }
    assert agent["queues"] == [
        {
            "name": f"consumer_{consumer.uuid.hex}",
            "vhost": manager.uuid.hex,
            "messages": 2,
            "consumers": 1,
            "object_type": None,
            "kind": "consumer",
            "exists_on_broker": True,
            "state": None,
            "node": None,
        }
    ]


def test_agent_is_connected_by_a_login_as_its_consumer_user_before_it_subscribes(
    identity, support_user, client_for, broker
):
    consumer = EventConsumerFactory(identity=identity)

    response = ask(
        client_for(support_user),
        broker,
        connections=[consumer_login(consumer)],
        queues=[consumer_queue(consumer)],
    )

    assert response.json()["agents"][0]["connected"] is True
    assert response.json()["summary"]["connected_agents"] == 1


def test_detail_shows_the_consumer_queue_missing_on_the_broker(
    identity, support_user, client_for, broker
):
    consumer = EventConsumerFactory(identity=identity)

    response = ask(client_for(support_user), broker, path=f"{URL}{identity.uuid}/")

    assert response.status_code == 200
    body = response.json()
    assert body["event_consumer_uuid"] == str(consumer.uuid)
    assert body["connected"] is False
    assert body["delivery_blocked_reason"] == "queue_not_provisioned"
    assert [(q["kind"], q["messages"], q["exists_on_broker"]) for q in body["queues"]] == [
        ("consumer", 0, False)
    ]


def _deactivate(consumer) -> None:
    consumer.user.is_active = False
    consumer.user.save()


def _delete_token(consumer) -> None:
    Token.objects.filter(user=consumer.user).delete()


def _remove_role(consumer) -> None:
    consumer.identity.offering.customer.owners.remove(consumer.user)


def _unknown_types(consumer) -> None:
    consumer.object_types = ["not_a_type"]
    consumer.save()


@pytest.mark.parametrize(
    ("break_delivery", "reason"),
    [
        (_deactivate, "owner_deactivated"),
        (_delete_token, "broker_credential_missing"),
        (_remove_role, "owner_has_no_role"),
        (_unknown_types, "no_object_types"),
    ],
)
def test_delivery_blocked_reason_follows_the_owners_account_role_and_filter(
    identity, manager, support_user, client_for, broker, break_delivery, reason
):
    # given a provisioned consumer that `manager` (a customer owner) registered
    consumer = EventConsumerFactory(identity=identity, user=manager)
    client = client_for(support_user)
    queues = [consumer_queue(consumer)]
    assert ask(client, broker, queues=queues).json()["agents"][0]["delivery_blocked_reason"] is None

    # when one fact it depends on goes away
    break_delivery(consumer)

    # then the stats say which
    assert ask(client, broker, queues=queues).json()["agents"][0]["delivery_blocked_reason"] == (
        reason
    )


@pytest.mark.parametrize("role", ["staff", "creator"])
def test_staff_or_the_agents_creator_has_no_role_without_owning_the_customer(
    identity, owner, support_user, client_for, broker, role
):
    # given a consumer owned by staff outside the customer, or by the agent's creator after
    # it left the customer
    if role == "staff":
        consumer = EventConsumerFactory(identity=identity, user=UserFactory(is_staff=True))
    else:
        consumer = EventConsumerFactory(identity=identity, user=owner)
        identity.offering.customer.owners.remove(owner)

    response = ask(client_for(support_user), broker, queues=[consumer_queue(consumer)])

    # then only a current owner may hold the broker credential (the sweep deletes it)
    assert response.json()["agents"][0]["delivery_blocked_reason"] == "owner_has_no_role"


def test_connected_filter_follows_the_consumer_rule(offering, support_user, client_for, broker):
    # given one consumer agent with a consumer on its queue and one without
    listening = EventConsumerFactory(identity=AgentIdentityFactory(offering=offering, name="a"))
    idle = EventConsumerFactory(identity=AgentIdentityFactory(offering=offering, name="b"))
    queues = [consumer_queue(listening, consumers=1), consumer_queue(idle)]
    client = client_for(support_user)

    # when filtered each way
    connected = ask(client, broker, queues=queues, path=f"{URL}?connected=true").json()
    disconnected = ask(client, broker, queues=queues, path=f"{URL}?connected=false").json()

    # then
    assert [agent["name"] for agent in connected["agents"]] == ["a"]
    assert [agent["name"] for agent in disconnected["agents"]] == ["b"]


def _add_consumer_agents(offering, count: int) -> list[Any]:
    consumers = []
    for _ in range(count):
        agent = AgentIdentityFactory(offering=offering)
        AgentServiceFactory(identity=agent)
        EventSubscriptionQueueFactory(event_subscription__agent_identity=agent)
        consumers.append(EventConsumerFactory(identity=agent))
    return consumers


def _count_cost(client, broker, consumers) -> tuple[Any, int, int]:
    broker.reset()
    cache.clear()
    mock_broker_snapshot(
        broker,
        base=MANAGEMENT,
        connections=[consumer_login(c, index=i) for i, c in enumerate(consumers)],
        queues=[consumer_queue(c, messages=1) for c in consumers],
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    return response, len(queries), len(broker.calls)


def test_stats_cost_the_same_for_1_and_50_agents_with_consumers(
    offering, staff_user, client_for, broker
):
    # given
    client = client_for(staff_user)
    consumers = _add_consumer_agents(offering, 1)

    # when
    one, one_queries, one_calls = _count_cost(client, broker, consumers)
    consumers += _add_consumer_agents(offering, 49)
    fifty, fifty_queries, fifty_calls = _count_cost(client, broker, consumers)

    # then
    assert one.json()["summary"]["connected_agents"] == 1
    assert fifty.json()["summary"]["connected_agents"] == 50
    assert fifty.json()["summary"]["total_queued_messages"] == 50
    assert all(agent["event_consumer_uuid"] for agent in fifty.json()["agents"])
    assert one_queries == fifty_queries == STATS_QUERIES
    assert one_calls == fifty_calls == SNAPSHOT_CALLS


def test_sdk_8_1_3_parses_the_unified_agents_part_of_the_body(
    identity, offering, manager, support_user, client_for, broker
):
    # given a unified-only agent and an agent with legacy subscriptions and a consumer
    unified = EventConsumerFactory(identity=identity, user=manager, auth_token_name="ci")
    mixed_agent = AgentIdentityFactory(offering=offering, name="mixed")
    EventSubscriptionQueueFactory(event_subscription__agent_identity=mixed_agent)
    mixed = EventConsumerFactory(identity=mixed_agent)
    body = ask(
        client_for(support_user),
        broker,
        connections=[consumer_login(unified)],
        queues=[consumer_queue(unified, consumers=1), consumer_queue(mixed)],
    ).json()
    # 8.1.x types observable_objects (legacy subscriptions only) as an object.
    for agent in body["agents"]:
        for subscription in agent["event_subscriptions"]:
            subscription["observable_objects"] = {}

    # when the real SDK parses it
    parsed = AgentConnectionStatsResponse.from_dict(body)

    # then every consumer key is typed
    by_name = {agent.name: agent for agent in parsed.agents}
    first = by_name[identity.name]
    assert first.event_consumer_uuid == unified.uuid
    assert first.user_uuid == manager.uuid
    assert first.auth_kind is AuthKindEnum.TOKEN
    assert first.authorized_via is AuthorizedViaEnum.CUSTOMER_OWNER
    assert first.auth_token_name == "ci"
    assert first.delivery_blocked_reason is None
    assert [(queue.kind, queue.consumers) for queue in first.queues] == [
        (QueueKindEnum.CONSUMER, 1)
    ]
    assert by_name["mixed"].event_consumer_uuid == mixed.uuid
    assert [queue.kind for queue in by_name["mixed"].queues] == [
        QueueKindEnum.CONSUMER,
        QueueKindEnum.LEGACY,
    ]
    assert parsed.summary.connected_agents == 1
