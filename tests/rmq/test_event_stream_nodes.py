"""The connection event stream on a cluster (pika faked): it consumes on the first node
that answers, prefers other nodes after losing one, and fails only when none answers."""

from typing import Any

import pika
import pika.exceptions
import pytest

from rmq import events
from rmq.events import ConnectionEventStream
from rmq.exceptions import BrokerUnavailable
from rmq.nodes import NodeMemory
from tests.rmq.test_events import FakeConnection

URLS = (
    "amqp://observer:pw@rabbit-1.test:5672/%2F",
    "amqp://observer:pw@rabbit-2.test:5672/%2F",
    "amqp://observer:pw@rabbit-3.test:5672/%2F",
)


class ClusterConnection(FakeConnection):
    """A FakeConnection that refuses on the hosts listed in `down_hosts`."""

    down_hosts: set[str] = set()
    attempts: list[str] = []

    def __init__(self, parameters: Any) -> None:
        ClusterConnection.attempts.append(parameters.host)
        if parameters.host in ClusterConnection.down_hosts:
            raise pika.exceptions.AMQPConnectionError("refused")
        super().__init__(parameters)


@pytest.fixture
def cluster(monkeypatch) -> type[ClusterConnection]:
    FakeConnection.refuse_with = None
    FakeConnection.instances = []
    ClusterConnection.down_hosts = set()
    ClusterConnection.attempts = []
    monkeypatch.setattr(events.pika, "BlockingConnection", ClusterConnection)
    return ClusterConnection


def _stream(memory: NodeMemory) -> ConnectionEventStream:
    return ConnectionEventStream(URLS, connect_timeout=2, node_memory=memory)


def test_the_stream_consumes_on_the_first_node_that_answers(cluster):
    # given node 1 refuses
    cluster.down_hosts = {"rabbit-1.test"}
    memory = NodeMemory()

    # when
    stream = _stream(memory)
    stream.open()

    # then it is bound on node 2, and node 1 is remembered down
    assert cluster.attempts == ["rabbit-1.test", "rabbit-2.test"]
    assert stream.connected_node == "rabbit-2.test:5672"
    assert FakeConnection.instances[-1].fake_channel.bindings[0][1] == "amq.rabbitmq.event"
    assert memory.is_down("rabbit-1.test:5672")


def test_after_losing_its_node_the_next_stream_lands_on_another_node(cluster):
    # given a stream on node 1 whose connection breaks off
    memory = NodeMemory()
    stream = _stream(memory)
    stream.open()
    FakeConnection.instances[-1].fail_with = pika.exceptions.StreamLostError("EOF")
    with pytest.raises(BrokerUnavailable, match="broke off"):
        stream.drain(seconds=0.1)
    assert stream.connected_node is None

    # when the observer opens a new stream (node 1 would accept again, e.g. half-up)
    replacement = _stream(memory)
    replacement.open()

    # then it tries the other nodes first
    assert replacement.connected_node == "rabbit-2.test:5672"


def test_no_node_answering_is_broker_unavailable(cluster):
    cluster.down_hosts = {"rabbit-1.test", "rabbit-2.test", "rabbit-3.test"}
    stream = _stream(NodeMemory())

    with pytest.raises(BrokerUnavailable, match="cannot consume the broker's event exchange"):
        stream.open()

    assert cluster.attempts == ["rabbit-1.test", "rabbit-2.test", "rabbit-3.test"]
    assert stream.connected_node is None
