"""A node failure on the dashboard: the summary names the node that answered and counts
the queues on a down node; such a queue shows an unknown depth and its node."""

from tests.factories import EventSubscriptionQueueFactory
from tests.kit.broker import MANAGEMENT, mock_broker_snapshot
from tests.kit.dashboard import TABLE, client_logged_in_as

DOWN_NODE = "rabbit@node-2"


def test_a_queue_on_a_down_node_is_shown_unknown_and_counted(db, broker, support_user):
    # given a queue the broker lists on a node that is down (no depth, state "down")
    queue = EventSubscriptionQueueFactory()
    vhost = queue.vhost
    mock_broker_snapshot(
        broker,
        queues=[{"name": queue.queue_name, "vhost": vhost, "state": "down", "node": DOWN_NODE}],
    )

    # when
    page = client_logged_in_as(support_user).get(TABLE).content.decode()

    # then the summary says which node answered and that one queue is on a down node
    answering = MANAGEMENT.split("//", 1)[1]
    assert f'via <span class="fleet-summary__node">{answering}</span>' in page
    assert '<span class="fleet-summary__down-nodes">1 queue on a down broker node</span>' in page
    # and the queue shows an unknown depth, titled with its node
    assert f'title="{queue.queue_name} (its broker node {DOWN_NODE} is down)">' in page
    assert ": ? msg / 0 consumers" in page


def test_with_every_node_up_nothing_is_said_about_down_nodes(db, broker, support_user):
    queue = EventSubscriptionQueueFactory()
    vhost = queue.vhost
    mock_broker_snapshot(
        broker,
        queues=[{"name": queue.queue_name, "vhost": vhost, "messages": 3, "state": "running"}],
    )

    page = client_logged_in_as(support_user).get(TABLE).content.decode()

    assert "fleet-summary__down-nodes" not in page
    assert ": 3 msg / 0 consumers" in page
