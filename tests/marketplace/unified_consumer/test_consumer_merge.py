"""The pure merge for agents with a unified event consumer: its queue, the connected rule,
and why delivery is blocked. Plain values: no database, no broker."""

import dataclasses
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from rest_framework.renderers import JSONRenderer

from marketplace.names import DeliveryBlockedReason, QueueKind
from marketplace.stats.fleet_table import find_connected_since, list_source_ips
from marketplace.stats.merge import (
    AgentRow,
    ConsumerRow,
    SubscriptionRow,
    build_connection_report,
)
from marketplace.stats.rendering import render_agent
from marketplace.stats.serializers import AgentConnectionOutputSerializer
from rmq.naming import format_consumer_queue_name, format_queue_name
from rmq.types import BrokerConnection, BrokerQueue, BrokerSnapshot

VHOST = "9a2b386ca3464aee9f313c0f20518f57"
OTHER_VHOST = "0" * 32
OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
T0 = datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC)


def consumer_row(**changes) -> ConsumerRow:
    uuid = uuid4()
    row = ConsumerRow(
        uuid=uuid,
        vhost=VHOST,
        rmq_username=uuid4().hex,
        queue_name=format_consumer_queue_name(uuid.hex),
        object_types=(),
        auth_kind="token",
        auth_token_prefix="a1b2c3d4",
        auth_token_name=None,
        authorized_via="customer_owner",
        is_owner_active=True,
        has_owner_token=True,
        has_owner_role=True,
    )
    return dataclasses.replace(row, **changes)


def agent_row(*, consumer: ConsumerRow | None, subscriptions=()) -> AgentRow:
    return AgentRow(
        uuid=uuid4(),
        name="agent",
        offering_uuid=OFFERING,
        offering_name="HPC",
        version="1.0.7",
        last_restarted=T0,
        user_uuid=uuid4(),
        user_username="owner",
        user_full_name="Ada Lovelace",
        user_is_staff=False,
        services=(),
        subscriptions=tuple(subscriptions),
        consumer=consumer,
    )


def login(user: str, *, vhost: str = VHOST, state: str | None = "running") -> BrokerConnection:
    return BrokerConnection(
        name=f"10.0.0.7:40001 -> 10.0.0.1:15674 ({user[:6]})",
        user=user,
        vhost=vhost,
        peer_host="10.0.0.7",
        connected_at=T0,
        state=state,
        recv_oct=10,
        send_oct=20,
        protocol="Web STOMP 1.2",
        node="rabbit@broker-0",
    )


def consumer_queue(consumer: ConsumerRow, *, messages: int = 0, consumers: int = 0) -> BrokerQueue:
    return BrokerQueue(
        vhost=consumer.vhost, name=consumer.queue_name, messages=messages, consumers=consumers
    )


def merge_one(row: AgentRow, *, connections=(), queues=()):
    snapshot = BrokerSnapshot(connections=tuple(connections), queues=tuple(queues), taken_at=T0)
    return build_connection_report([row], snapshot)


def test_consumer_queue_is_listed_with_its_depth_and_consumers():
    # given an agent whose consumer queue holds 4 messages and has 1 consumer
    consumer = consumer_row()
    row = agent_row(consumer=consumer)

    # when
    report = merge_one(row, queues=[consumer_queue(consumer, messages=4, consumers=1)])

    # then
    (queue,) = report.agents[0].queues
    assert (queue.name, queue.kind, queue.object_type) == (
        consumer.queue_name,
        QueueKind.CONSUMER,
        None,
    )
    assert (queue.messages, queue.consumers, queue.exists_on_broker) == (4, 1, True)
    assert report.summary.total_queued_messages == 4


def test_consumer_queue_missing_on_the_broker_is_listed_empty_and_blocks_delivery():
    consumer = consumer_row()

    report = merge_one(agent_row(consumer=consumer))

    agent = report.agents[0]
    (queue,) = agent.queues
    assert (queue.messages, queue.consumers, queue.exists_on_broker) == (0, 0, False)
    assert agent.delivery_blocked_reason == DeliveryBlockedReason.QUEUE_NOT_PROVISIONED
    assert report.summary.queues_missing_on_broker == 1
    assert agent.is_connected is False


def test_agent_is_connected_when_its_consumer_queue_has_a_consumer_and_no_login_is_listed():
    # given the broker lists a consumer on the queue but (yet) no connection
    consumer = consumer_row()

    report = merge_one(agent_row(consumer=consumer), queues=[consumer_queue(consumer, consumers=1)])

    assert report.agents[0].is_connected is True
    assert report.summary.connected_agents == 1


def test_agent_is_connected_when_a_live_connection_logs_in_as_its_consumer_user():
    # given the agent logged in as its broker user but has not subscribed yet
    consumer = consumer_row()

    report = merge_one(
        agent_row(consumer=consumer),
        connections=[login(consumer.rmq_username)],
        queues=[consumer_queue(consumer)],
    )

    agent = report.agents[0]
    assert agent.is_connected is True
    assert agent.consumer_connection is not None
    assert (agent.consumer_connection.source_ip, agent.consumer_connection.node) == (
        "10.0.0.7",
        "rabbit@broker-0",
    )
    assert find_connected_since(agent) == T0
    assert list_source_ips(agent) == ("10.0.0.7",)


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param(lambda user: login(user, vhost=OTHER_VHOST), id="another vhost"),
        pytest.param(lambda user: login(user, state="closing"), id="closing"),
        pytest.param(lambda user: login(uuid4().hex), id="another user"),
    ],
)
def test_agent_is_disconnected_without_a_live_login_in_its_owners_vhost_or_a_consumer(
    connection,
):
    consumer = consumer_row()

    report = merge_one(
        agent_row(consumer=consumer),
        connections=[connection(consumer.rmq_username)],
        queues=[consumer_queue(consumer)],
    )

    agent = report.agents[0]
    assert agent.is_connected is False
    assert agent.consumer_connection is not None
    assert agent.consumer_connection.connected is False
    assert find_connected_since(agent) is None
    assert report.summary.disconnected_agents == 1


def test_agent_with_legacy_subscriptions_and_a_consumer_shows_both_and_counts_each_queue_once():
    # given an agent with a legacy subscription (connected) and a consumer (not connected)
    consumer = consumer_row()
    sub_uuid = uuid4()
    legacy_name = format_queue_name(
        subscription_hex=sub_uuid.hex, offering_hex=OFFERING.hex, object_type="order"
    )
    subscription = SubscriptionRow(
        uuid=sub_uuid, created=T0, vhost=VHOST, object_types=("order",), queue_names=(legacy_name,)
    )
    row = agent_row(consumer=consumer, subscriptions=[subscription])
    legacy_queue = BrokerQueue(vhost=VHOST, name=legacy_name, messages=2, consumers=1)

    # when the same agent appears twice in the rows (two filters matching it)
    snapshot = BrokerSnapshot(
        connections=(login(sub_uuid.hex),),
        queues=(legacy_queue, consumer_queue(consumer, messages=3)),
        taken_at=T0,
    )
    report = build_connection_report([row, row], snapshot)

    # then both queues are listed, the consumer's first, and each counts once
    agent = report.agents[0]
    assert [(queue.kind, queue.messages) for queue in agent.queues] == [
        (QueueKind.CONSUMER, 3),
        (QueueKind.LEGACY, 2),
    ]
    assert [sub.rmq_connection.connected for sub in agent.event_subscriptions] == [True]
    assert agent.is_connected is True
    assert report.summary.total_queues == 2
    assert report.summary.total_queued_messages == 5


def test_legacy_only_agent_has_no_consumer_connection_and_no_blocked_reason():
    report = merge_one(agent_row(consumer=None))

    agent = report.agents[0]
    assert (agent.consumer_connection, agent.delivery_blocked_reason, agent.queues) == (
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("changes", "on_broker", "reason"),
    [
        ({}, True, None),
        ({"object_types": ("order", "not_a_type")}, True, None),
        ({"is_owner_active": False, "has_owner_token": False}, False, "owner_deactivated"),
        ({"has_owner_token": False, "has_owner_role": False}, False, "queue_not_provisioned"),
        ({"has_owner_token": False, "has_owner_role": False}, True, "broker_credential_missing"),
        ({"has_owner_role": False, "object_types": ("nope",)}, True, "owner_has_no_role"),
        ({"object_types": ("nope", "neither")}, True, "no_object_types"),
    ],
)
def test_delivery_blocked_reason_is_the_first_that_applies(changes, on_broker, reason):
    # given a consumer with some of the blocking facts, its queue on the broker or not
    consumer = consumer_row(**changes)
    queues = [consumer_queue(consumer)] if on_broker else []

    # when
    report = merge_one(agent_row(consumer=consumer), queues=queues)

    # then the first reason in the documented order is reported
    assert report.agents[0].delivery_blocked_reason == reason


@pytest.mark.parametrize(
    "consumer",
    [
        pytest.param(consumer_row(), id="delivering"),
        pytest.param(
            consumer_row(auth_kind=None, auth_token_prefix=None, authorized_via=None),
            id="nothing recorded",
        ),
        pytest.param(consumer_row(is_owner_active=False, auth_token_name="ci"), id="blocked"),
    ],
)
def test_plain_consumer_agent_is_byte_identical_to_the_serializer(consumer):
    # given a consumer agent merged with a snapshot listing its login
    report = merge_one(
        agent_row(consumer=consumer),
        connections=[login(consumer.rmq_username)],
        queues=[consumer_queue(consumer, messages=1)],
    )
    agent = report.agents[0]

    # when it is written by the fast path and by the documented serializer
    fast = JSONRenderer().render(render_agent(agent))
    documented = JSONRenderer().render(AgentConnectionOutputSerializer(agent).data)

    # then the bytes match
    assert fast == documented
    assert b'"event_consumer_uuid":"' + str(consumer.uuid).encode() in fast
