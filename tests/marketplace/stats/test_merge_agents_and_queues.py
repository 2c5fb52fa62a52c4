"""The pure merge, agents and queues: an agent is connected through any of its
subscriptions and sees only its own queues, whether the database, the broker or both
know them."""

import pytest

from marketplace.stats.merge import QueueStatus, build_connection_report
from rmq.naming import parse_queue_object_type
from tests.kit.merge_values import (
    OTHER_VHOST,
    VHOST,
    make_agent_row,
    make_broker_queue,
    make_connection,
    make_queue_name,
    make_snapshot,
    make_subscription_row,
)


def test_agent_is_connected_when_one_of_its_subscriptions_has_a_live_connection():
    # given
    connected_sub = make_subscription_row()
    idle_sub = make_subscription_row()
    agent = make_agent_row(idle_sub, connected_sub)

    # when
    report = build_connection_report(
        [agent], make_snapshot((make_connection(connected_sub.uuid.hex),))
    )

    # then
    status = report.agents[0]
    assert status.is_connected is True
    assert [sub.rmq_connection.connected for sub in status.event_subscriptions] == [False, True]


def test_agent_is_disconnected_when_none_of_its_subscriptions_has_a_live_connection():
    # given
    first, second = make_subscription_row(), make_subscription_row()
    closed = make_connection(first.uuid.hex, state="closed")

    # when
    report = build_connection_report([make_agent_row(first, second)], make_snapshot((closed,)))

    # then
    assert report.agents[0].is_connected is False


def test_agents_on_one_offering_never_see_each_others_subscriptions_or_queues():
    # given: two agents of one offering in one vhost; only the first is connected, and the
    # broker holds a queue for each (one of them not in the database)
    first_sub = make_subscription_row(queue_types=("order",))
    second_sub = make_subscription_row(queue_types=("order",))
    first, second = (
        make_agent_row(first_sub, name="first"),
        make_agent_row(second_sub, name="second"),
    )
    extra_of_second = make_queue_name(second_sub.uuid, "resource")
    snapshot = make_snapshot(
        (make_connection(first_sub.uuid.hex),),
        (
            make_broker_queue(first_sub.queue_names[0], messages=1),
            make_broker_queue(second_sub.queue_names[0], messages=2),
            make_broker_queue(extra_of_second, messages=3),
        ),
    )

    # when
    report = build_connection_report([first, second], snapshot)

    # then
    first_status, second_status = report.agents
    assert [sub.uuid for sub in first_status.event_subscriptions] == [first_sub.uuid]
    assert [sub.uuid for sub in second_status.event_subscriptions] == [second_sub.uuid]
    assert [queue.name for queue in first_status.queues] == [first_sub.queue_names[0]]
    assert sorted(queue.name for queue in second_status.queues) == sorted(
        [second_sub.queue_names[0], extra_of_second]
    )
    assert first_status.is_connected is True
    assert second_status.is_connected is False


def test_observable_objects_are_the_object_types_the_subscription_registered():
    # given
    sub = make_subscription_row(object_types=("order", "resource"))

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot())

    # then
    assert report.agents[0].event_subscriptions[0].observable_objects == (
        {"object_type": "order"},
        {"object_type": "resource"},
    )


def test_queue_on_the_broker_reports_its_messages_and_consumers():
    # given
    sub = make_subscription_row(queue_types=("resource",))
    name = sub.queue_names[0]

    # when
    report = build_connection_report(
        [make_agent_row(sub)],
        make_snapshot(queues=(make_broker_queue(name, messages=5, consumers=2),)),
    )

    # then
    assert report.agents[0].queues == (
        QueueStatus(
            name=name,
            vhost=VHOST,
            messages=5,
            consumers=2,
            object_type="resource",
            kind="legacy",
            exists_on_broker=True,
        ),
    )


def test_database_queue_missing_on_the_broker_is_reported_empty_and_flagged():
    # given
    sub = make_subscription_row(queue_types=("order",))

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot())

    # then
    assert report.agents[0].queues == (
        QueueStatus(
            name=sub.queue_names[0],
            vhost=VHOST,
            messages=0,
            consumers=0,
            object_type="order",
            kind="legacy",
            exists_on_broker=False,
        ),
    )


def test_database_queue_in_another_vhost_on_the_broker_counts_as_missing():
    # given
    sub = make_subscription_row(queue_types=("order",))
    elsewhere = make_broker_queue(sub.queue_names[0], vhost=OTHER_VHOST, messages=9)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot(queues=(elsewhere,)))

    # then
    (queue,) = report.agents[0].queues
    assert queue.exists_on_broker is False
    assert queue.messages == 0


def test_broker_queue_named_after_a_subscription_but_absent_from_the_database_is_included():
    # given: the database knows no queue of the subscription for the agent's offering
    sub = make_subscription_row()
    name = make_queue_name(sub.uuid, "user_role")

    # when
    report = build_connection_report(
        [make_agent_row(sub)],
        make_snapshot(queues=(make_broker_queue(name, messages=4, consumers=0),)),
    )

    # then
    assert report.agents[0].queues == (
        QueueStatus(
            name=name,
            vhost=VHOST,
            messages=4,
            consumers=0,
            object_type="user_role",
            kind="legacy",
            exists_on_broker=True,
        ),
    )


def test_broker_queue_named_after_a_subscription_in_another_vhost_is_not_included():
    # given
    sub = make_subscription_row()
    elsewhere = make_broker_queue(make_queue_name(sub.uuid, "order"), vhost=OTHER_VHOST)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot(queues=(elsewhere,)))

    # then
    assert report.agents[0].queues == ()


def test_queue_both_in_the_database_and_on_the_broker_is_listed_once():
    # given
    sub = make_subscription_row(queue_types=("order",))

    # when
    report = build_connection_report(
        [make_agent_row(sub)],
        make_snapshot(queues=(make_broker_queue(sub.queue_names[0], messages=3),)),
    )

    # then
    assert [queue.name for queue in report.agents[0].queues] == [sub.queue_names[0]]


def test_an_unknown_depth_from_the_broker_becomes_zero():
    # given
    sub = make_subscription_row(queue_types=("order",))
    unreported = make_broker_queue(sub.queue_names[0], messages=None, consumers=0)

    # when
    report = build_connection_report([make_agent_row(sub)], make_snapshot(queues=(unreported,)))

    # then
    (queue,) = report.agents[0].queues
    assert (queue.messages, queue.consumers, queue.exists_on_broker) == (0, 0, True)


@pytest.mark.parametrize(
    ("name", "object_type"),
    [
        (
            "subscription_0233d0c94a9544c0bca9b1709dc3c24d"
            "_offering_012013ecc2e84a3c90e2d616541c82fb_order",
            "order",
        ),
        (
            "subscription_18b4ecbe541b46b38c9e129f3485911f"
            "_offering_012013ecc2e84a3c90e2d616541c82fb_resource_periodic_limits",
            "resource_periodic_limits",
        ),
        ("subscription_0233d0c9_offering_012013ec_order", None),
        ("subscription_0233d0c94a9544c0bca9b1709dc3c24d_order", None),
        (
            "subscription_0233D0C94A9544C0BCA9B1709DC3C24D"
            "_offering_012013ecc2e84a3c90e2d616541c82fb_order",
            None,
        ),
        (
            "subscription_0233d0c94a9544c0bca9b1709dc3c24d"
            "_offering_012013ecc2e84a3c90e2d616541c82fb_",
            None,
        ),
        ("amq.gen-JzTY20BRgKO-HjmUJj0wLg", None),
    ],
)
def test_parse_queue_object_type_reads_the_type_only_from_a_subscription_queue_name(
    name, object_type
):
    # when / then
    assert parse_queue_object_type(name) == object_type
