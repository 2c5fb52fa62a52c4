"""Pollers share one answer per filter set while its broker snapshot may be served."""

import re

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rmq.snapshot_cache import join_refresh
from tests.factories import AgentIdentityFactory, AgentServiceFactory
from tests.kit.api import STATS_URL
from tests.kit.broker import MANAGEMENT, SNAPSHOT_CALLS, mock_broker_snapshot


@pytest.fixture
def fleet(offering):
    return [AgentIdentityFactory(offering=offering, name=f"agent-{n}") for n in range(3)]


def _names(response) -> list[str]:
    return [agent["name"] for agent in response.json()["agents"]]


def test_pollers_within_the_ttl_share_one_answer(settings, fleet, support_user, client_for, broker):
    # given a 30 s TTL and a broker that answers
    settings.BROKER_SNAPSHOT_TTL = 30
    mock_broker_snapshot(broker)
    client = client_for(support_user)
    first = client.get(STATS_URL)

    # when another poller asks with the same filters
    with CaptureQueriesContext(connection) as queries:
        second = client.get(STATS_URL)

    # then it gets the same bytes without asking the broker or loading the agents again
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content
    assert re.fullmatch(
        r'broker;desc="fetched";dur=\d+\.\d, answer;desc="built";dur=\d+\.\d',
        first["Server-Timing"],
    )
    assert re.fullmatch(
        r'broker;desc="shared";dur=\d+\.\d, answer;desc="shared"', second["Server-Timing"]
    )
    assert second["Content-Type"] == "application/json"
    assert len(broker.calls) == SNAPSHOT_CALLS
    assert len(queries) == 1  # the token
    assert _names(second) == ["agent-0", "agent-1", "agent-2"]


def test_each_filter_set_has_its_own_answer(settings, fleet, support_user, client_for, broker):
    settings.BROKER_SNAPSHOT_TTL = 30
    mock_broker_snapshot(broker)
    client = client_for(support_user)

    everyone = client.get(STATS_URL)
    one = client.get(STATS_URL, {"name": "agent-1"})

    assert _names(everyone) == ["agent-0", "agent-1", "agent-2"]
    assert _names(one) == ["agent-1"]
    assert re.fullmatch(
        r'broker;desc="shared";dur=\d+\.\d, answer;desc="built";dur=\d+\.\d',
        one["Server-Timing"],
    )
    # one snapshot served both
    assert len(broker.calls) == SNAPSHOT_CALLS


def test_a_database_change_shows_in_the_answer_the_next_refresh_builds(
    transactional_db, settings, fleet, support_user, client_for, broker, fake_clock
):
    # given an answer shared for 2 s, then a new agent (committed: the refresh thread
    # reads it on its own database connection)
    settings.BROKER_SNAPSHOT_TTL = 2
    mock_broker_snapshot(broker)
    client = client_for(support_user)
    assert len(_names(client.get(STATS_URL))) == 3
    AgentServiceFactory(identity=AgentIdentityFactory(offering=fleet[0].offering, name="new"))

    # when a poller asks within the TTL, one after it, and one after that refresh
    within = client.get(STATS_URL)
    fake_clock.advance(3)
    stale = client.get(STATS_URL)
    assert join_refresh(60)
    after = client.get(STATS_URL)

    # then the new agent shows once the refresh (beside the stale answer) has built the
    # answer, which the poller was served as is
    assert "new" not in _names(within)
    assert "new" not in _names(stale)
    assert stale["Server-Timing"].startswith('broker;desc="stale"')
    assert "new" in _names(after)
    assert after["Server-Timing"].endswith('answer;desc="shared"')
    assert len(broker.calls) >= 2 * SNAPSHOT_CALLS


def test_without_a_ttl_every_answer_is_built_afresh(
    settings, fleet, support_user, client_for, broker
):
    settings.BROKER_SNAPSHOT_TTL = 0
    mock_broker_snapshot(broker)
    client = client_for(support_user)
    client.get(STATS_URL)
    AgentIdentityFactory(offering=fleet[0].offering, name="new")

    assert "new" in _names(client.get(STATS_URL))
    assert len(broker.calls) == 2 * SNAPSHOT_CALLS


def test_a_shared_answer_is_never_served_once_the_broker_is_gone_beyond_the_max_age(
    settings, fleet, support_user, client_for, broker, fake_clock
):
    # given a shared answer, then the broker refusing every call
    settings.BROKER_SNAPSHOT_TTL = 2
    mock_broker_snapshot(broker)
    client = client_for(support_user)
    assert client.get(STATS_URL).status_code == 200
    broker.reset()
    for path in ("connections", "queues", "consumers"):
        broker.add(
            responses.GET,
            f"{MANAGEMENT}/api/{path}",
            body=requests.ConnectionError("Connection refused"),
        )

    # when a poller asks after the max age
    fake_clock.advance(settings.BROKER_SNAPSHOT_MAX_AGE + 1)
    response = client.get(STATS_URL)

    # then it is told the broker cannot be asked, not shown the old picture
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"


def test_the_browsable_api_still_renders_the_stats(
    settings, fleet, support_user, client_for, broker
):
    settings.BROKER_SNAPSHOT_TTL = 30
    mock_broker_snapshot(broker)

    response = client_for(support_user).get(STATS_URL, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "agent-1" in response.content.decode()
