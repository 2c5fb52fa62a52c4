"""Reading shipped log lines: newest first, filtered, paged, and only one's own agents'."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentIdentityFactory, OfferingFactory, UserFactory
from tests.marketplace.agent_logs.builders import LOGS, at, store_log


@pytest.fixture
def lines(identity):
    """Four lines of the owner's agent, out of order, and one of a stranger's agent."""
    stored = {
        "info": store_log(identity, at=at(10), level="INFO"),
        "error": store_log(identity, at=at(12), level="ERROR"),
        "warning": store_log(identity, at=at(11), level="WARNING"),
        "critical": store_log(identity, at=at(13), level="CRITICAL"),
    }
    stored["stranger"] = store_log(AgentIdentityFactory(), at=at(14), level="ERROR")
    return stored


def uuids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["uuid"] for item in response.json()]


def test_lines_are_listed_newest_first_as_a_plain_paged_array(client_for, owner, lines):
    # when the owner lists its agent's lines two at a time
    response = client_for(owner).get(f"{LOGS}?page_size=2")

    # then the newest two come first, with the paging headers the SDK follows
    assert uuids(response) == [str(lines["critical"].uuid), str(lines["error"].uuid)]
    assert response["X-Result-Count"] == "4"
    assert 'rel="next"' in response["Link"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=ERROR", ["error"]),
        ("level=ERROR&level=critical", ["critical", "error"]),
        ("level=WARNING,INFO", ["warning", "info"]),
        ("since=2026-06-01T11:00:00Z", ["critical", "error", "warning"]),
        ("until=2026-06-01T11:00:00%2B00:00", ["warning", "info"]),
        ("until=2026-06-01T11:00:00+00:00", ["warning", "info"]),
        ("since=1780311600&until=1780315200.0", ["error", "warning"]),
        ("timestamp_from=1780311600&timestamp_to=1780315200", ["error", "warning"]),
    ],
)
def test_lines_are_filtered_by_level_and_by_when_they_were_logged(
    client_for, owner, lines, query, expected
):
    # when the owner filters its agent's lines
    response = client_for(owner).get(f"{LOGS}?{query}")

    # then only the matching lines come back, newest first
    assert uuids(response) == [str(lines[name].uuid) for name in expected]


def test_lines_are_filtered_by_agent_and_by_offering(client_for, owner, identity, lines):
    # given a second agent of the same owner, on another offering of its customer
    other_agent = AgentIdentityFactory(
        offering=OfferingFactory(customer=identity.offering.customer)
    )
    other_line = store_log(other_agent, at=at(9))
    client = client_for(owner)

    # when it filters by each agent (hex and dashed) and by the second offering
    first = client.get(f"{LOGS}?agent_identity_uuid={identity.uuid.hex}")
    second = client.get(f"{LOGS}?agent_identity_uuid={other_agent.uuid}")
    by_offering = client.get(f"{LOGS}?offering_uuid={other_agent.offering.uuid}")

    # then each filter keeps only that agent's or that offering's lines
    assert len(uuids(first)) == 4
    assert uuids(second) == uuids(by_offering) == [str(other_line.uuid)]


@pytest.mark.parametrize(
    "query",
    ["level=TRACE", "since=yesterday", "until=nan", "agent_identity_uuid=agent-1"],
)
def test_an_invalid_filter_is_a_400_with_field_errors(client_for, owner, lines, query):
    # when a filter value is not one the list understands
    response = client_for(owner).get(f"{LOGS}?{query}")

    # then it is a 400 naming the filter
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


@pytest.mark.parametrize(
    ("role", "count"),
    [("outsider", 0), ("creator", 0), ("owner", 4), ("support", 5), ("staff", 5)],
)
def test_each_user_sees_the_lines_of_the_agents_it_may_see(
    client_for, api_client, identity, owner, lines, role, count
):
    # given the agent's creator who is not an owner, and users in other roles
    creator = UserFactory()
    identity.created_by = creator
    identity.save()
    user = {
        "outsider": UserFactory(),
        "creator": creator,
        "owner": owner,
        "support": UserFactory(is_support=True),
        "staff": UserFactory(is_staff=True),
    }[role]

    # when the user lists log lines
    response = client_for(user).get(LOGS)

    # then it sees the lines of the agents it may see, and no others
    assert response.status_code == 200
    assert len(response.json()) == count


def test_anonymous_may_not_list_lines(api_client, lines):
    assert api_client.get(LOGS).status_code == 401


def test_listing_costs_the_same_queries_for_one_agent_or_many(client_for, owner, identity):
    # given one line of the owner's agent
    store_log(identity, at=at(8))
    client = client_for(owner)
    with CaptureQueriesContext(connection) as one_agent:
        client.get(LOGS)

    # when 20 more agents of the same customer have lines too
    for _ in range(20):
        store_log(AgentIdentityFactory(offering=identity.offering), at=at(9))
    with CaptureQueriesContext(connection) as many_agents:
        response = client.get(f"{LOGS}?page_size=100")

    # then listing them takes the same number of queries
    assert len(response.json()) == 21
    assert len(many_agents) == len(one_agent)
