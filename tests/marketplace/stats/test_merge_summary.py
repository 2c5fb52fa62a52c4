"""The pure merge, the summary: what it counts, and how the connected filter narrows the
agents while the summary follows."""

from uuid import uuid4

from marketplace.stats.merge import AgentRow, build_connection_report, summarize_agents
from rmq.types import BrokerSnapshot
from tests.kit.merge_values import (
    make_agent_row,
    make_agent_status,
    make_broker_queue,
    make_connection,
    make_queue_name,
    make_queue_status,
    make_snapshot,
    make_subscription_row,
)


def test_summary_counts_agents_subscriptions_and_queues_of_the_report():
    # given: agent A connected on one of two subscriptions, with a queue holding 5 messages
    # and no consumer, a consumed queue holding 2, and a database queue the broker lacks;
    # agent B disconnected with one queue holding 1 message
    a_live, a_idle = (
        make_subscription_row(queue_types=("resource", "order")),
        make_subscription_row(queue_types=("offering_user",)),
    )
    b_sub = make_subscription_row(queue_types=("order",))
    snapshot = make_snapshot(
        (make_connection(a_live.uuid.hex), make_connection(b_sub.uuid.hex, state="closed")),
        (
            make_broker_queue(a_live.queue_names[0], messages=5, consumers=0),
            make_broker_queue(a_live.queue_names[1], messages=2, consumers=1),
            make_broker_queue(b_sub.queue_names[0], messages=1, consumers=1),
        ),
    )

    # when
    report = build_connection_report(
        [make_agent_row(a_live, a_idle), make_agent_row(b_sub)], snapshot
    )

    # then
    summary = report.summary
    assert summary.total_agents == 2
    assert summary.connected_agents == 1
    assert summary.disconnected_agents == 1
    assert summary.total_queued_messages == 8
    assert summary.total_subscriptions == 3
    assert summary.connected_subscriptions == 1
    assert summary.total_queues == 4
    assert summary.queues_missing_on_broker == 1
    assert summary.queues_without_consumers == 1


def test_summary_counts_a_broker_queue_listed_under_two_agents_once():
    # given
    shared = make_queue_status(make_queue_name(uuid4(), "order"), messages=7, consumers=0)
    own = make_queue_status(make_queue_name(uuid4(), "order"), messages=3, consumers=1)
    agents = [
        make_agent_status(is_connected=True, subscriptions_connected=(True,), queues=(shared,)),
        make_agent_status(
            is_connected=False, subscriptions_connected=(False,), queues=(shared, own)
        ),
    ]

    # when
    summary = summarize_agents(agents)

    # then
    assert summary.total_queued_messages == 10
    assert summary.total_queues == 2
    assert summary.queues_without_consumers == 1


def test_summary_does_not_count_a_missing_queue_as_one_without_consumers():
    # given
    missing = make_queue_status(make_queue_name(uuid4(), "order"), exists_on_broker=False)
    idle = make_queue_status(make_queue_name(uuid4(), "order"), consumers=0)
    agents = [
        make_agent_status(is_connected=False, subscriptions_connected=(), queues=(missing, idle))
    ]

    # when
    summary = summarize_agents(agents)

    # then
    assert summary.queues_missing_on_broker == 1
    assert summary.queues_without_consumers == 1


def test_summary_of_no_agents_is_all_zero():
    # when
    summary = summarize_agents([])

    # then
    assert summary.total_agents == summary.connected_agents == summary.disconnected_agents == 0
    assert summary.total_queued_messages == summary.total_queues == 0
    assert summary.total_subscriptions == summary.connected_subscriptions == 0
    assert summary.queues_missing_on_broker == summary.queues_without_consumers == 0


def make_mixed_fleet() -> tuple[list[AgentRow], BrokerSnapshot]:
    online_sub = make_subscription_row(queue_types=("order",))
    offline_sub = make_subscription_row(queue_types=("order", "resource"))
    rows = [make_agent_row(online_sub, name="online"), make_agent_row(offline_sub, name="offline")]
    snapshot = make_snapshot(
        (make_connection(online_sub.uuid.hex),),
        (
            make_broker_queue(online_sub.queue_names[0], messages=2, consumers=1),
            make_broker_queue(offline_sub.queue_names[0], messages=5, consumers=0),
            make_broker_queue(offline_sub.queue_names[1], messages=6, consumers=0),
        ),
    )
    return rows, snapshot


def test_connected_filter_true_keeps_only_connected_agents_and_the_summary_follows():
    # given
    rows, snapshot = make_mixed_fleet()

    # when
    report = build_connection_report(rows, snapshot, connected=True)

    # then
    assert [agent.row.name for agent in report.agents] == ["online"]
    assert report.summary.total_agents == 1
    assert report.summary.connected_agents == 1
    assert report.summary.disconnected_agents == 0
    assert report.summary.total_queued_messages == 2
    assert report.summary.total_queues == 1
    assert report.summary.queues_without_consumers == 0


def test_connected_filter_false_keeps_only_disconnected_agents_and_the_summary_follows():
    # given
    rows, snapshot = make_mixed_fleet()

    # when
    report = build_connection_report(rows, snapshot, connected=False)

    # then
    assert [agent.row.name for agent in report.agents] == ["offline"]
    assert report.summary.total_agents == 1
    assert report.summary.connected_agents == 0
    assert report.summary.disconnected_agents == 1
    assert report.summary.total_queued_messages == 11
    assert report.summary.total_queues == 2
    assert report.summary.queues_without_consumers == 2


def test_without_the_connected_filter_every_agent_is_kept_in_row_order():
    # given
    rows, snapshot = make_mixed_fleet()

    # when
    report = build_connection_report(rows, snapshot)

    # then
    assert [agent.row.name for agent in report.agents] == ["online", "offline"]
    assert report.summary.total_queued_messages == 13
