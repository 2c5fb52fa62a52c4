"""The pure merge on a cluster with a node down: a queue on the down node still exists,
its depth is unknown (null, not 0), it is counted apart, blocks its consumer's delivery,
and the summary names the management node that answered. Plain values only."""

import dataclasses
from uuid import uuid4

from marketplace.names import DeliveryBlockedReason
from marketplace.stats.merge import ConsumerRow, build_connection_report
from marketplace.stats.rendering import render_report
from rmq.naming import format_consumer_queue_name
from rmq.types import BrokerQueue
from tests.kit.merge_values import (
    VHOST,
    make_agent_row,
    make_connection,
    make_snapshot,
    make_subscription_row,
)

DOWN_NODE = "rabbit@rabbit-2"
UP_NODE = "rabbit@rabbit-1"


def _consumer_row() -> ConsumerRow:
    consumer_uuid = uuid4()
    return ConsumerRow(
        uuid=consumer_uuid,
        vhost=VHOST,
        rmq_username=uuid4().hex,
        queue_name=format_consumer_queue_name(consumer_uuid),
        object_types=(),
        auth_kind=None,
        auth_token_prefix=None,
        auth_token_name=None,
        authorized_via=None,
        is_owner_active=True,
        has_owner_token=True,
        has_owner_role=True,
    )


def _down(name: str) -> BrokerQueue:
    # As /api/queues lists it with the node down: no messages key, state "down".
    return BrokerQueue(
        vhost=VHOST, name=name, messages=None, consumers=0, state="down", node=DOWN_NODE
    )


def _running(name: str, *, messages: int, consumers: int) -> BrokerQueue:
    return BrokerQueue(
        vhost=VHOST,
        name=name,
        messages=messages,
        consumers=consumers,
        state="running",
        node=UP_NODE,
    )


def test_a_queue_on_a_down_node_exists_with_unknown_messages_and_is_counted_apart():
    # given one agent whose legacy queue lives on the down node, one whose queue is fine
    lost_sub = make_subscription_row(queue_types=("order",))
    fine_sub = make_subscription_row(queue_types=("order",))
    snapshot = dataclasses.replace(
        make_snapshot(
            (make_connection(fine_sub.uuid.hex),),
            (
                _down(lost_sub.queue_names[0]),
                _running(fine_sub.queue_names[0], messages=4, consumers=0),
            ),
        ),
        answered_by="rabbit-1.test:15672",
    )

    # when
    report = build_connection_report(
        [make_agent_row(lost_sub, name="lost"), make_agent_row(fine_sub, name="fine")], snapshot
    )

    # then the down queue is listed honestly
    lost, fine = report.agents
    (queue,) = lost.queues
    assert (queue.exists_on_broker, queue.messages, queue.state, queue.node) == (
        True,
        None,
        "down",
        DOWN_NODE,
    )
    assert (fine.queues[0].messages, fine.queues[0].state) == (4, "running")
    # and the summary counts it apart: not missing, not unconsumed, no messages added
    summary = report.summary
    assert summary.queues_on_down_nodes == 1
    assert summary.queues_missing_on_broker == 0
    assert summary.queues_without_consumers == 1
    assert summary.total_queued_messages == 4
    assert summary.broker_node == "rabbit-1.test:15672"


def test_a_consumer_whose_queue_node_is_down_reads_queue_node_down():
    # given an agent with an event consumer, connected, whose queue's node is down
    consumer = _consumer_row()
    row = dataclasses.replace(make_agent_row(), consumer=consumer)
    snapshot = make_snapshot(
        (make_connection(consumer.rmq_username),), (_down(consumer.queue_name),)
    )

    # when
    (agent,) = build_connection_report([row], snapshot).agents

    # then it is still connected (its connection is on a live node) and says why nothing
    # reaches it
    assert agent.is_connected is True
    assert agent.delivery_blocked_reason is DeliveryBlockedReason.QUEUE_NODE_DOWN


def test_owner_deactivated_and_not_provisioned_still_come_first():
    consumer = dataclasses.replace(_consumer_row(), is_owner_active=False)
    row = dataclasses.replace(make_agent_row(), consumer=consumer)

    (agent,) = build_connection_report(
        [row], make_snapshot((), (_down(consumer.queue_name),))
    ).agents

    assert agent.delivery_blocked_reason is DeliveryBlockedReason.OWNER_DEACTIVATED


def test_the_rendered_body_has_null_messages_the_queue_state_and_node_and_broker_node():
    # given
    sub = make_subscription_row(queue_types=("order",))
    snapshot = dataclasses.replace(
        make_snapshot((), (_down(sub.queue_names[0]),)), answered_by="rabbit-3.test:15672"
    )

    # when
    body = render_report(build_connection_report([make_agent_row(sub)], snapshot))

    # then
    (queue,) = body["agents"][0]["queues"]
    assert {key: queue[key] for key in ("messages", "exists_on_broker", "state", "node")} == {
        "messages": None,
        "exists_on_broker": True,
        "state": "down",
        "node": DOWN_NODE,
    }
    assert body["summary"]["queues_on_down_nodes"] == 1
    assert body["summary"]["broker_node"] == "rabbit-3.test:15672"
