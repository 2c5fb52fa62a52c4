"""The pure merge of agent rows with one broker snapshot: no database, no HTTP.

Every value is built by hand, so each rule of the report (which connection belongs to a
subscription, which queues belong to an agent, what the summary counts) is pinned alone.
"""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from marketplace.stats.merge import (
    AgentRow,
    AgentStatus,
    QueueStatus,
    RmqConnectionStatus,
    ServiceRow,
    SubscriptionRow,
    SubscriptionStatus,
    build_connection_report,
    parse_queue_object_type,
    select_connection,
    summarize_agents,
)
from rmq.types import BrokerConnection, BrokerQueue, BrokerSnapshot

# The owner vhost and offering of the captured RabbitMQ 3.10 responses.
VHOST = "9a2b386ca3464aee9f313c0f20518f57"
OTHER_VHOST = "5c0f1e9d2b7a4c3e8f6a1b2c3d4e5f60"
OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
T0 = datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC)


def _queue_name(sub: UUID, object_type: str, *, offering: UUID = OFFERING) -> str:
    return f"subscription_{sub.hex}_offering_{offering.hex}_{object_type}"


def _sub(
    *,
    uuid: UUID | None = None,
    vhost: str = VHOST,
    object_types: tuple[str, ...] = ("order",),
    queue_types: tuple[str, ...] = (),
) -> SubscriptionRow:
    sub_uuid = uuid or uuid4()
    return SubscriptionRow(
        uuid=sub_uuid,
        created=T0,
        vhost=vhost,
        object_types=object_types,
        queue_names=tuple(_queue_name(sub_uuid, kind) for kind in queue_types),
    )


def _agent(*subscriptions: SubscriptionRow, name: str = "agent") -> AgentRow:
    return AgentRow(
        uuid=uuid4(),
        name=name,
        offering_uuid=OFFERING,
        offering_name="HPC",
        version="1.0.0",
        last_restarted=T0,
        user_uuid=None,
        user_username=None,
        user_full_name=None,
        user_is_staff=None,
        services=(ServiceRow(uuid=uuid4(), name="orders", state="ACTIVE", modified=T0),),
        subscriptions=subscriptions,
    )


def _conn(
    user: str,
    *,
    vhost: str = VHOST,
    state: str | None = "running",
    connected_at: datetime | None = T0,
    peer_host: str = "127.0.0.1",
    port: int = 38832,
) -> BrokerConnection:
    # Shaped like the captured AMQP connection of a subscription user.
    return BrokerConnection(
        name=f"{peer_host}:{port} -> 127.0.0.1:5672",
        user=user,
        vhost=vhost,
        peer_host=peer_host,
        connected_at=connected_at,
        state=state,
        recv_oct=477 if state else None,
        send_oct=537 if state else None,
        protocol="AMQP 0-9-1",
        node="rabbit@vm",
    )


def _broker_queue(
    name: str, *, vhost: str = VHOST, messages: int | None = 0, consumers: int = 1
) -> BrokerQueue:
    return BrokerQueue(vhost=vhost, name=name, messages=messages, consumers=consumers)


def _snapshot(
    connections: tuple[BrokerConnection, ...] = (), queues: tuple[BrokerQueue, ...] = ()
) -> BrokerSnapshot:
    return BrokerSnapshot(connections=connections, queues=queues)


def _queue_status(
    name: str, *, messages: int = 0, consumers: int = 0, exists_on_broker: bool = True
) -> QueueStatus:
    return QueueStatus(
        name=name,
        vhost=VHOST,
        messages=messages,
        consumers=consumers,
        object_type=parse_queue_object_type(name),
        kind="legacy",
        exists_on_broker=exists_on_broker,
    )


def _agent_status(
    *, is_connected: bool, subscriptions_connected: tuple[bool, ...], queues: tuple = ()
) -> AgentStatus:
    return AgentStatus(
        row=_agent(),
        is_connected=is_connected,
        event_subscriptions=tuple(
            SubscriptionStatus(
                uuid=uuid4(),
                created=T0,
                observable_objects=({"object_type": "order"},),
                rmq_connection=RmqConnectionStatus(connected=connected),
            )
            for connected in subscriptions_connected
        ),
        queues=queues,
    )


# --- which connection belongs to a subscription -------------------------------------------


def test_subscription_is_connected_by_a_connection_of_its_uuid_hex_in_its_vhost():
    # given
    sub = _sub()
    connection = _conn(sub.uuid.hex, peer_host="10.1.2.3")

    # when
    report = build_connection_report([_agent(sub)], _snapshot((connection,)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status == RmqConnectionStatus(
        connected=True,
        source_ip="10.1.2.3",
        connected_at=T0,
        state="running",
        recv_oct=477,
        send_oct=537,
        node="rabbit@vm",
        protocol="AMQP 0-9-1",
    )
    assert report.agents[0].is_connected is True


def test_connection_of_the_same_user_in_another_vhost_does_not_connect_the_subscription():
    # given
    sub = _sub(vhost=VHOST)
    elsewhere = _conn(sub.uuid.hex, vhost=OTHER_VHOST)

    # when
    report = build_connection_report([_agent(sub)], _snapshot((elsewhere,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection == RmqConnectionStatus(
        connected=False
    )
    assert report.agents[0].is_connected is False


def test_connection_of_another_user_in_the_same_vhost_does_not_connect_the_subscription():
    # given: the captured publisher logs in as guest into the owner's vhost
    sub = _sub()
    publisher = _conn("guest")

    # when
    report = build_connection_report([_agent(sub)], _snapshot((publisher,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection.connected is False


def test_latest_running_connection_is_reported_among_several():
    # given
    sub = _sub()
    older = _conn(sub.uuid.hex, connected_at=T0, peer_host="10.0.0.1")
    latest = _conn(sub.uuid.hex, connected_at=T0 + timedelta(seconds=30), peer_host="10.0.0.2")
    middle = _conn(sub.uuid.hex, connected_at=T0 + timedelta(seconds=10), peer_host="10.0.0.3")

    # when
    report = build_connection_report([_agent(sub)], _snapshot((older, latest, middle)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status.source_ip == "10.0.0.2"
    assert status.connected_at == T0 + timedelta(seconds=30)


def test_select_connection_prefers_a_running_connection_over_a_later_one_without_stats():
    # given
    running = _conn("u", connected_at=T0, peer_host="10.0.0.1")
    fresh = _conn("u", connected_at=T0 + timedelta(seconds=5), state=None, peer_host="10.0.0.2")

    # when
    chosen = select_connection([fresh, running])

    # then
    assert chosen == running


def test_select_connection_picks_the_latest_when_none_has_stats_yet():
    # given
    undated = _conn("u", state=None, connected_at=None, peer_host="10.0.0.1")
    later = _conn("u", state=None, connected_at=T0 + timedelta(seconds=5), peer_host="10.0.0.2")

    # when
    chosen = select_connection([undated, later])

    # then
    assert chosen == later


def test_connection_without_state_yet_still_counts_as_connected():
    # given: a Web STOMP connection listed before the broker emitted its stats
    sub = _sub()
    fresh = _conn(sub.uuid.hex, state=None)

    # when
    report = build_connection_report([_agent(sub)], _snapshot((fresh,)))

    # then
    status = report.agents[0].event_subscriptions[0].rmq_connection
    assert status.connected is True
    assert status.state is None
    assert status.recv_oct is None
    assert status.send_oct is None
    assert report.agents[0].is_connected is True


@pytest.mark.parametrize("state", ["closed", "closing"])
def test_closed_or_closing_connection_does_not_count_as_connected(state):
    # given
    sub = _sub()
    dying = _conn(sub.uuid.hex, state=state)

    # when
    report = build_connection_report([_agent(sub)], _snapshot((dying,)))

    # then
    assert report.agents[0].event_subscriptions[0].rmq_connection == RmqConnectionStatus(
        connected=False
    )
    assert report.agents[0].is_connected is False


def test_select_connection_skips_a_later_closing_connection_for_a_live_one():
    # given
    live = _conn("u", connected_at=T0, peer_host="10.0.0.1")
    closing = _conn("u", connected_at=T0 + timedelta(seconds=9), state="closing")

    # when
    chosen = select_connection([closing, live])

    # then
    assert chosen == live


def test_select_connection_returns_none_without_a_live_candidate():
    # given
    candidates = [_conn("u", state="closed"), _conn("u", state="closing")]

    # when / then
    assert select_connection(candidates) is None
    assert select_connection([]) is None


# --- agents -------------------------------------------------------------------------------


def test_agent_is_connected_when_one_of_its_subscriptions_has_a_live_connection():
    # given
    connected_sub = _sub()
    idle_sub = _sub()
    agent = _agent(idle_sub, connected_sub)

    # when
    report = build_connection_report([agent], _snapshot((_conn(connected_sub.uuid.hex),)))

    # then
    status = report.agents[0]
    assert status.is_connected is True
    assert [sub.rmq_connection.connected for sub in status.event_subscriptions] == [False, True]


def test_agent_is_disconnected_when_none_of_its_subscriptions_has_a_live_connection():
    # given
    first, second = _sub(), _sub()
    closed = _conn(first.uuid.hex, state="closed")

    # when
    report = build_connection_report([_agent(first, second)], _snapshot((closed,)))

    # then
    assert report.agents[0].is_connected is False


def test_agents_on_one_offering_never_see_each_others_subscriptions_or_queues():
    # given: two agents of one offering in one vhost; only the first is connected, and the
    # broker holds a queue for each (one of them not in the database)
    first_sub = _sub(queue_types=("order",))
    second_sub = _sub(queue_types=("order",))
    first, second = _agent(first_sub, name="first"), _agent(second_sub, name="second")
    extra_of_second = _queue_name(second_sub.uuid, "resource")
    snapshot = _snapshot(
        (_conn(first_sub.uuid.hex),),
        (
            _broker_queue(first_sub.queue_names[0], messages=1),
            _broker_queue(second_sub.queue_names[0], messages=2),
            _broker_queue(extra_of_second, messages=3),
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
    sub = _sub(object_types=("order", "resource"))

    # when
    report = build_connection_report([_agent(sub)], _snapshot())

    # then
    assert report.agents[0].event_subscriptions[0].observable_objects == (
        {"object_type": "order"},
        {"object_type": "resource"},
    )


# --- queues -------------------------------------------------------------------------------


def test_queue_on_the_broker_reports_its_messages_and_consumers():
    # given
    sub = _sub(queue_types=("resource",))
    name = sub.queue_names[0]

    # when
    report = build_connection_report(
        [_agent(sub)], _snapshot(queues=(_broker_queue(name, messages=5, consumers=2),))
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
    sub = _sub(queue_types=("order",))

    # when
    report = build_connection_report([_agent(sub)], _snapshot())

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
    sub = _sub(queue_types=("order",))
    elsewhere = _broker_queue(sub.queue_names[0], vhost=OTHER_VHOST, messages=9)

    # when
    report = build_connection_report([_agent(sub)], _snapshot(queues=(elsewhere,)))

    # then
    (queue,) = report.agents[0].queues
    assert queue.exists_on_broker is False
    assert queue.messages == 0


def test_broker_queue_named_after_a_subscription_but_absent_from_the_database_is_included():
    # given: the database knows no queue of the subscription
    sub = _sub()
    name = _queue_name(sub.uuid, "user_role", offering=UUID("ffd0c2a1b3e44f5f8a9b0c1d2e3f4a5b"))

    # when
    report = build_connection_report(
        [_agent(sub)], _snapshot(queues=(_broker_queue(name, messages=4, consumers=0),))
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
    sub = _sub()
    elsewhere = _broker_queue(_queue_name(sub.uuid, "order"), vhost=OTHER_VHOST)

    # when
    report = build_connection_report([_agent(sub)], _snapshot(queues=(elsewhere,)))

    # then
    assert report.agents[0].queues == ()


def test_queue_both_in_the_database_and_on_the_broker_is_listed_once():
    # given
    sub = _sub(queue_types=("order",))

    # when
    report = build_connection_report(
        [_agent(sub)], _snapshot(queues=(_broker_queue(sub.queue_names[0], messages=3),))
    )

    # then
    assert [queue.name for queue in report.agents[0].queues] == [sub.queue_names[0]]


def test_an_unknown_depth_from_the_broker_becomes_zero():
    # given
    sub = _sub(queue_types=("order",))
    unreported = _broker_queue(sub.queue_names[0], messages=None, consumers=0)

    # when
    report = build_connection_report([_agent(sub)], _snapshot(queues=(unreported,)))

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


# --- summary ------------------------------------------------------------------------------


def test_summary_counts_agents_subscriptions_and_queues_of_the_report():
    # given: agent A connected on one of two subscriptions, with a queue holding 5 messages
    # and no consumer, a consumed queue holding 2, and a database queue the broker lacks;
    # agent B disconnected with one queue holding 1 message
    a_live, a_idle = _sub(queue_types=("resource", "order")), _sub(queue_types=("offering_user",))
    b_sub = _sub(queue_types=("order",))
    snapshot = _snapshot(
        (_conn(a_live.uuid.hex), _conn(b_sub.uuid.hex, state="closed")),
        (
            _broker_queue(a_live.queue_names[0], messages=5, consumers=0),
            _broker_queue(a_live.queue_names[1], messages=2, consumers=1),
            _broker_queue(b_sub.queue_names[0], messages=1, consumers=1),
        ),
    )

    # when
    report = build_connection_report([_agent(a_live, a_idle), _agent(b_sub)], snapshot)

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
    shared = _queue_status(_queue_name(uuid4(), "order"), messages=7, consumers=0)
    own = _queue_status(_queue_name(uuid4(), "order"), messages=3, consumers=1)
    agents = [
        _agent_status(is_connected=True, subscriptions_connected=(True,), queues=(shared,)),
        _agent_status(is_connected=False, subscriptions_connected=(False,), queues=(shared, own)),
    ]

    # when
    summary = summarize_agents(agents)

    # then
    assert summary.total_queued_messages == 10
    assert summary.total_queues == 2
    assert summary.queues_without_consumers == 1


def test_summary_does_not_count_a_missing_queue_as_one_without_consumers():
    # given
    missing = _queue_status(_queue_name(uuid4(), "order"), exists_on_broker=False)
    idle = _queue_status(_queue_name(uuid4(), "order"), consumers=0)
    agents = [_agent_status(is_connected=False, subscriptions_connected=(), queues=(missing, idle))]

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


# --- the connected filter -----------------------------------------------------------------


def _mixed_fleet() -> tuple[list[AgentRow], BrokerSnapshot]:
    online_sub = _sub(queue_types=("order",))
    offline_sub = _sub(queue_types=("order", "resource"))
    rows = [_agent(online_sub, name="online"), _agent(offline_sub, name="offline")]
    snapshot = _snapshot(
        (_conn(online_sub.uuid.hex),),
        (
            _broker_queue(online_sub.queue_names[0], messages=2, consumers=1),
            _broker_queue(offline_sub.queue_names[0], messages=5, consumers=0),
            _broker_queue(offline_sub.queue_names[1], messages=6, consumers=0),
        ),
    )
    return rows, snapshot


def test_connected_filter_true_keeps_only_connected_agents_and_the_summary_follows():
    # given
    rows, snapshot = _mixed_fleet()

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
    rows, snapshot = _mixed_fleet()

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
    rows, snapshot = _mixed_fleet()

    # when
    report = build_connection_report(rows, snapshot)

    # then
    assert [agent.row.name for agent in report.agents] == ["online", "offline"]
    assert report.summary.total_queued_messages == 13
