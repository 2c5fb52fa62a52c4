"""The fleet dashboard's in-place refresh (the table alone, at a fixed query count), and the
red banner instead of a table when the broker cannot be asked."""

from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentServiceFactory, EventSubscriptionQueueFactory
from tests.kit.broker import CONNECTIONS_URL, QUEUES_URL, mock_broker_snapshot
from tests.kit.dashboard import BROKER_DOWN, PAGE, TABLE, client_logged_in_as, rows_html


def test_page_wires_the_refresh_to_the_table_view(db, broker, support_user, settings):
    # given a refresh period
    settings.DASHBOARD_REFRESH_SECONDS = 7
    mock_broker_snapshot(broker)

    # when
    page = client_logged_in_as(support_user).get(PAGE).content.decode()

    # then the page tells its script where to fetch the table and how often
    assert 'data-refresh-url="/admin/fleet/table/"' in page
    assert 'data-refresh-seconds="7"' in page
    assert '<script src="/static/agentstats/fleet_dashboard.js" defer></script>' in page


def test_table_view_serves_the_table_alone_and_marks_it(fleet, support_user):
    # when the page's script asks for the table
    response = client_logged_in_as(support_user).get(TABLE, {"name": "beta"})

    # then it gets the fragment (no page around it), never cached, marked as the table
    page = response.content.decode()
    assert response.status_code == 200
    assert response["X-Fleet-Table"] == "1"
    assert "no-cache" in response["Cache-Control"]
    assert "<html" not in page
    assert 'id="fleet-filters"' not in page
    assert list(rows_html(page)) == [str(fleet["beta"].uuid)]


def test_table_costs_the_same_queries_for_one_agent_and_for_twenty(support_user, broker, db):
    # given a broker that answers and a signed-in support user
    mock_broker_snapshot(broker, connections=[], queues=[])
    client = client_logged_in_as(support_user)
    EventSubscriptionQueueFactory()

    # when the table is read with one agent, then with twenty
    with CaptureQueriesContext(connection) as one:
        client.get(TABLE)
    for _ in range(19):
        AgentServiceFactory(
            identity=EventSubscriptionQueueFactory().event_subscription.agent_identity
        )
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(TABLE)

    # then the number of queries does not grow with the fleet
    assert response.context["table"].summary.total_agents == 20
    assert len(twenty) == len(one)


@pytest.mark.parametrize("path", [PAGE, TABLE])
@pytest.mark.parametrize(
    ("broker_answer", "banner"),
    [
        ({"body": requests.ConnectionError("refused")}, BROKER_DOWN),
        ({"status": 500}, "RabbitMQ cannot be asked: RabbitMQ management API failed with HTTP 500"),
        (
            {"status": 401},
            "RabbitMQ cannot be asked: RabbitMQ management API rejected the configured credentials",
        ),
    ],
)
def test_broker_down_shows_a_banner_and_no_table(
    path, broker_answer, banner, fleet, support_user, broker
):
    # given a broker that refuses, fails or rejects our credentials
    broker.reset()
    broker.add(responses.GET, CONNECTIONS_URL, **broker_answer)
    broker.add(responses.GET, QUEUES_URL, **broker_answer)

    # when
    response = client_logged_in_as(support_user).get(path)

    # then a red banner says so, and nothing claims an agent is disconnected
    page = response.content.decode()
    assert response.status_code == 503
    assert (
        f'<div class="fleet-banner fleet-banner--broker-down" role="alert">{banner}</div>' in page
    )
    assert 'id="fleet-agents"' not in page
    assert "disconnected" not in page
    assert {urlsplit(call.request.url).path for call in broker.calls} >= {"/api/connections"}
