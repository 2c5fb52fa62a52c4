"""/metrics on a cluster: which configured management node answered the scrape's
snapshot, and which nodes this process remembers as down; labels are the configured
nodes only."""

import pytest
import requests
import responses

from rmq.nodes import PROCESS_NODE_MEMORY
from tests.kit.metrics import parse_samples, sample

NODE_1 = "http://rabbit-1.test:15672"
NODE_2 = "http://rabbit-2.test:15672"


@pytest.fixture
def two_nodes(settings):
    settings.RABBITMQ_MANAGEMENT_URL = f"{NODE_1},{NODE_2}"
    PROCESS_NODE_MEMORY.forget_all()
    yield
    PROCESS_NODE_MEMORY.forget_all()


def _answer_snapshot(broker: responses.RequestsMock, base: str) -> None:
    for resource in ("connections", "queues", "consumers"):
        broker.add(responses.GET, f"{base}/api/{resource}", json=[])


def test_metrics_name_the_answering_node_and_the_node_remembered_down(
    fleet, broker, scraper, two_nodes
):
    # given node 1 refuses and node 2 answers
    for resource in ("connections", "queues", "consumers"):
        broker.add(responses.GET, f"{NODE_1}/api/{resource}", body=requests.ConnectionError())
    _answer_snapshot(broker, NODE_2)

    # when
    response = scraper()

    # then
    assert response.status_code == 200
    samples = parse_samples(response.content.decode())
    assert sample(samples, "agentstats_broker_up") == 1
    assert sample(samples, "agentstats_broker_answering_node", node="rabbit-2.test:15672") == 1
    assert sample(samples, "agentstats_broker_answering_node", node="rabbit-1.test:15672") == 0
    assert sample(samples, "agentstats_broker_node_up", node="rabbit-1.test:15672") == 0
    assert sample(samples, "agentstats_broker_node_up", node="rabbit-2.test:15672") == 1
    nodes = {
        dict(labels)["node"]
        for name, labels in samples
        if name in {"agentstats_broker_answering_node", "agentstats_broker_node_up"}
    }
    assert nodes == {"rabbit-1.test:15672", "rabbit-2.test:15672"}


def test_a_failed_scrape_names_no_answering_node(fleet, broker, scraper, two_nodes):
    # given both nodes fail
    for base in (NODE_1, NODE_2):
        for resource in ("connections", "queues", "consumers"):
            broker.add(responses.GET, f"{base}/api/{resource}", status=503)

    # when
    samples = parse_samples(scraper().content.decode())

    # then
    assert sample(samples, "agentstats_broker_up") == 0
    assert sample(samples, "agentstats_broker_answering_node", node="rabbit-1.test:15672") == 0
    assert sample(samples, "agentstats_broker_answering_node", node="rabbit-2.test:15672") == 0
    assert sample(samples, "agentstats_broker_node_up", node="rabbit-1.test:15672") == 0
    assert sample(samples, "agentstats_broker_node_up", node="rabbit-2.test:15672") == 0
