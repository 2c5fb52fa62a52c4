"""The pure merge lists an agent's broker queues only for the agent's own offering: a queue
named after its subscription but another offering is not the agent's, in rows or summary."""

import dataclasses
from uuid import UUID

from marketplace.stats.merge import build_connection_report
from tests.kit.merge_values import (
    make_agent_row,
    make_broker_queue,
    make_queue_name,
    make_snapshot,
    make_subscription_row,
)

FOREIGN_OFFERING = UUID("ffd0c2a1b3e44f5f8a9b0c1d2e3f4a5b")


def test_a_broker_queue_of_the_subscription_for_another_offering_is_ignored():
    # given the agent's own order queue in the database and, on the broker, that queue and
    # a queue named after the same subscription but another offering, holding messages
    sub = make_subscription_row(queue_types=("order",))
    own = make_queue_name(sub.uuid, "order")
    foreign = make_queue_name(sub.uuid, "order", offering=FOREIGN_OFFERING)
    snapshot = make_snapshot(
        queues=(
            make_broker_queue(own, messages=1, consumers=1),
            make_broker_queue(foreign, messages=7, consumers=0),
        )
    )

    # when
    report = build_connection_report([make_agent_row(sub)], snapshot)

    # then only its own queue is listed, and the summary counts nothing of the other
    assert [queue.name for queue in report.agents[0].queues] == [own]
    assert report.summary.total_queues == 1
    assert report.summary.total_queued_messages == 1
    assert report.summary.queues_without_consumers == 0


def test_a_made_up_object_type_on_the_agents_offering_is_still_listed():
    # given a broker queue of the subscription on the agent's own offering the database
    # does not know (declared before the service took configure away, or by an operator)
    sub = make_subscription_row()
    stray = make_queue_name(sub.uuid, "made_up")

    # when
    report = build_connection_report(
        [make_agent_row(sub)], make_snapshot(queues=(make_broker_queue(stray, consumers=0),))
    )

    # then it is the agent's: listed, with its parsed type
    assert [(queue.name, queue.object_type) for queue in report.agents[0].queues] == [
        (stray, "made_up")
    ]


def test_a_database_queue_on_another_offering_stays_listed():
    # given the database names a queue of the subscription for another offering
    sub = make_subscription_row()
    foreign = make_queue_name(sub.uuid, "order", offering=FOREIGN_OFFERING)
    sub = dataclasses.replace(sub, queue_names=(foreign,))

    # when the broker lists it too
    report = build_connection_report(
        [make_agent_row(sub)], make_snapshot(queues=(make_broker_queue(foreign, messages=2),))
    )

    # then the database's word counts: it is listed, with the broker's figures
    [queue] = report.agents[0].queues
    assert (queue.name, queue.messages, queue.exists_on_broker) == (foreign, 2, True)
