"""What a scrape costs (fixed queries and broker calls), and a broker outage: 200 with
agentstats_broker_up 0 and the failed snapshot counted."""

from typing import Any

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.names import AgentServiceState
from tests.kit.broker import (
    CONNECTIONS_URL,
    SNAPSHOT_CALLS,
    mock_broker_snapshot,
    mock_queue_listings,
)
from tests.kit.fleet import Fleet
from tests.kit.metrics import (
    ERRORS_TOTAL,
    SCRAPE_QUERIES,
    SNAPSHOTS_COUNT,
    accumulated,
    parse_samples,
    sample,
)


def _add_agents(offering: Any, count: int) -> None:
    fleet = Fleet()
    for _ in range(count):
        fleet.add_queue(fleet.add_agent(offering=offering, services=[AgentServiceState.ACTIVE]))


def _scrape_counting(scrape: Any, broker: responses.RequestsMock) -> tuple[int, int, int]:
    broker.reset()
    mock_broker_snapshot(broker, connections=[], queues=[])
    with CaptureQueriesContext(connection) as queries:
        response = scrape()
    return response.status_code, len(queries), len(broker.calls)


def test_each_scrape_costs_the_same_queries_and_broker_calls_for_1_and_30_agents(
    scraper, broker, offering
):
    # given
    _add_agents(offering, 1)

    # when
    one = _scrape_counting(scraper, broker)
    _add_agents(offering, 29)
    thirty = _scrape_counting(scraper, broker)

    # then
    assert one == thirty == (200, SCRAPE_QUERIES, SNAPSHOT_CALLS)


BROKER_FAILURES: list[Any] = [
    pytest.param({"body": requests.ConnectionError("Connection refused")}, id="refused"),
    pytest.param({"body": requests.ReadTimeout("Read timed out.")}, id="timeout"),
    pytest.param({"status": 401, "json": {"error": "not_authorized"}}, id="http-401"),
    pytest.param({"status": 502, "body": "bad gateway"}, id="http-502"),
    pytest.param({"json": {"items": []}}, id="unusable-body"),
]


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_metrics_answer_200_with_broker_down_and_count_the_failed_snapshot(
    failure, scraper, fleet, broker, settings
):
    # given
    settings.RABBITMQ_GET_RETRIES = 0
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    mock_queue_listings(broker, queues=fleet["queues"])
    errors_before = accumulated(ERRORS_TOTAL)
    snapshots_before = accumulated(SNAPSHOTS_COUNT)

    # when
    response = scraper()

    # then: the broker is down, the failure counted and timed, the services still reported,
    # and nothing claims the agents are disconnected
    assert response.status_code == 200
    samples = parse_samples(response.content.decode())
    assert sample(samples, "agentstats_broker_up") == 0
    assert sample(samples, ERRORS_TOTAL) == errors_before + 1
    assert sample(samples, SNAPSHOTS_COUNT) == snapshots_before + 1
    assert sample(samples, "agentstats_services", state="ACTIVE") == 2
    assert sample(samples, "agentstats_services", state="IDLE") == 1
    assert sample(samples, "agentstats_services", state="ERROR") == 1
    names = {name for name, _ in samples}
    assert not names & {
        "agentstats_agents",
        "agentstats_queued_messages",
        "agentstats_queue_consumers",
    }


def test_metrics_ask_the_broker_on_every_scrape_and_recover_with_it(scraper, fleet, broker):
    # given: a broker that fails once, then answers
    broker.add(responses.GET, CONNECTIONS_URL, status=503, body="starting")
    mock_broker_snapshot(broker, connections=fleet["connections"], queues=fleet["queues"])
    errors_before = accumulated(ERRORS_TOTAL)

    # when
    down = parse_samples(scraper().content.decode())
    up = parse_samples(scraper().content.decode())

    # then
    assert sample(down, "agentstats_broker_up") == 0
    assert sample(up, "agentstats_broker_up") == 1
    assert sample(up, "agentstats_agents", status="connected") == 2
    assert sample(up, ERRORS_TOTAL) == errors_before + 1
    assert [call.request.url.split("?")[0] for call in broker.calls].count(CONNECTIONS_URL) == 2
