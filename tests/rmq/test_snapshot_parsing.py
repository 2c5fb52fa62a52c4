"""The snapshot parsers: the captured RabbitMQ 3.10 responses and every body shape they
refuse."""

import functools
from datetime import UTC, datetime
from typing import Any

import pytest

from rmq.exceptions import BrokerResponseError
from rmq.snapshot import parse_connections, parse_queues
from rmq.types import BrokerConnection, BrokerQueue
from tests.kit.broker import CAPTURED_OWNER, captured


def test_parse_connections_reads_the_captured_rabbitmq_response():
    # given three connections: AMQP publisher, AMQP agent, Web STOMP agent without stats yet
    body = captured("connections_columns.json")

    # when
    connections = parse_connections(body)

    # then
    assert connections[0] == BrokerConnection(
        name="127.0.0.1:38824 -> 127.0.0.1:5672",
        user="guest",
        vhost=CAPTURED_OWNER.hex,
        peer_host="127.0.0.1",
        connected_at=datetime(2026, 11, 24, 6, 44, 28, 403000, tzinfo=UTC),
        state="running",
        recv_oct=1353,
        send_oct=553,
        protocol="AMQP 0-9-1",
        node="rabbit@vm",
    )
    assert [c.user for c in connections] == [
        "guest",
        "18b4ecbe541b46b38c9e129f3485911f",
        "0233d0c94a9544c0bca9b1709dc3c24d",
    ]
    stomp = connections[2]
    assert (stomp.protocol, stomp.state, stomp.recv_oct, stomp.send_oct) == (
        "Web STOMP 1.2",
        None,
        None,
        None,
    )
    assert stomp.connected_at == datetime(2026, 11, 24, 6, 44, 28, 419000, tzinfo=UTC)
    assert stomp.connected_at.utcoffset().total_seconds() == 0


def test_parse_connections_treats_missing_optional_fields_as_none():
    # when
    (connection,) = parse_connections([{"name": "n", "user": "u", "vhost": "/"}])

    # then
    assert connection == BrokerConnection(
        name="n",
        user="u",
        vhost="/",
        peer_host=None,
        connected_at=None,
        state=None,
        recv_oct=None,
        send_oct=None,
        protocol=None,
        node=None,
    )


def test_parse_queues_counts_each_queues_consumers_in_the_captured_responses():
    # when: the captured queues (their statistics `consumers` ignored) and consumers
    queues = parse_queues(captured("queues_columns.json"), consumers=captured("consumers.json"))

    # then: the counts agree with the statistics the broker listed then
    assert queues == (
        BrokerQueue(
            vhost=CAPTURED_OWNER.hex,
            name="subscription_0233d0c94a9544c0bca9b1709dc3c24d_offering_"
            "012013ecc2e84a3c90e2d616541c82fb_order",
            messages=0,
            consumers=1,
            state="running",
        ),
        BrokerQueue(
            vhost=CAPTURED_OWNER.hex,
            name="subscription_18b4ecbe541b46b38c9e129f3485911f_offering_"
            "012013ecc2e84a3c90e2d616541c82fb_resource",
            messages=5,
            consumers=0,
            state="running",
        ),
    )
    assert [queue.consumers for queue in queues] == [
        item["consumers"] for item in captured("queues_columns.json")
    ]


def test_consumers_are_counted_per_vhost_and_queue():
    # given two consumers of q in v, one of q in another vhost, one of a queue not listed
    consumers = [
        {"queue": {"name": "q", "vhost": "v"}},
        {"queue": {"name": "q", "vhost": "v"}},
        {"queue": {"name": "q", "vhost": "w"}},
        {"queue": {"name": "gone", "vhost": "v"}},
    ]

    # when
    queues = parse_queues(
        [{"name": "q", "vhost": "v", "messages": 2}, {"name": "q", "vhost": "w"}],
        consumers=consumers,
    )

    # then
    assert [(queue.vhost, queue.consumers) for queue in queues] == [("v", 2), ("w", 1)]


def test_parse_queues_treats_a_missing_depth_as_none_and_no_consumers_as_0():
    # when
    (queue,) = parse_queues([{"name": "q", "vhost": "v"}], consumers=[])

    # then
    assert (queue.messages, queue.consumers) == (None, 0)


def test_empty_lists_parse_to_empty_tuples():
    assert (parse_connections([]), parse_queues([], consumers=[])) == ((), ())


CONNECTION = {"name": "n", "user": "u", "vhost": "v"}
QUEUE = {"name": "q", "vhost": "v"}


def parse_queue_list(consumers: Any) -> object:
    """parse_queues with a good queue list and the given consumers body."""
    return parse_queues([QUEUE], consumers=consumers)


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        pytest.param(parse_connections, {"items": [CONNECTION]}, id="connections-dict"),
        pytest.param(parse_queues, {"items": [QUEUE]}, id="queues-dict"),
        pytest.param(parse_queue_list, {"items": []}, id="consumers-dict"),
        pytest.param(parse_queue_list, [{"queue": "q"}], id="consumer-queue-not-object"),
        pytest.param(parse_queue_list, [{"channel": 1}], id="consumer-without-queue"),
        pytest.param(parse_queue_list, [{"queue": {"name": "q"}}], id="consumer-queue-no-vhost"),
        pytest.param(parse_connections, None, id="connections-null"),
        pytest.param(parse_connections, [CONNECTION, "x"], id="connections-non-object-item"),
        pytest.param(parse_queues, [[QUEUE]], id="queues-nested-list"),
        pytest.param(parse_connections, [{"user": "u", "vhost": "v"}], id="connection-no-name"),
        pytest.param(parse_connections, [{**CONNECTION, "user": 7}], id="connection-int-user"),
        pytest.param(
            parse_connections, [{**CONNECTION, "connected_at": "1795502668403"}], id="ms-as-str"
        ),
        pytest.param(parse_connections, [{**CONNECTION, "recv_oct": 1.5}], id="float-octets"),
        pytest.param(parse_connections, [{**CONNECTION, "send_oct": True}], id="bool-octets"),
        pytest.param(parse_connections, [{**CONNECTION, "state": 1}], id="int-state"),
        pytest.param(parse_queues, [{**QUEUE, "messages": "5"}], id="str-messages"),
        pytest.param(parse_queues, [{"name": "q"}], id="queue-no-vhost"),
    ],
)
def test_unexpected_body_shapes_are_response_errors(parse, body):
    if parse is parse_queues:
        parse = functools.partial(parse_queues, consumers=[])
    with pytest.raises(BrokerResponseError):
        parse(body)
