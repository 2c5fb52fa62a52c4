"""Opening the event stream on a node is bounded by the connect timeout as a whole (pika's
stack_timeout, 15 s by default, would let a hung node hold the observer past its lease),
with one attempt per node."""

from rmq.events import ConnectionEventStream


def test_each_nodes_connection_setup_is_bounded_by_the_connect_timeout():
    stream = ConnectionEventStream(
        ("amqp://u:p@rabbit-1.test:5672/%2F", "amqp://u:p@rabbit-2.test:5672/%2F"),
        connect_timeout=2.5,
    )

    for label in stream.nodes:
        parameters = stream._parameters_of[label]
        assert parameters.stack_timeout == 2.5
        assert parameters.socket_timeout == 2.5
        assert parameters.connection_attempts == 1
