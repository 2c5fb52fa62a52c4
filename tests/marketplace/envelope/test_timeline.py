"""GET /api/marketplace-site-agent-identities/<uuid>/connection_events/: an agent's
connect and disconnect timeline, newest first, paged, and who may read it."""

import uuid

import pytest

from marketplace.models import AgentIdentity, EventSubscription
from tests.kit.api import IDENTITIES
from tests.kit.envelope import NODE, close_connection, iso, open_connection, subscribe


@pytest.fixture
def timeline_agent(tenants, clock) -> AgentIdentity:
    """agent_a: conn-1 open from -3h to -2h, conn-2 open since -1h."""
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(3 * 3600))
    close_connection("conn-1", at=clock.ago(2 * 3600))
    open_connection(subscription, name="conn-2", at=clock.ago(3600), protocol="STOMP 1.2")
    return tenants.agent_a


def timeline_url(agent: AgentIdentity) -> str:
    return f"{IDENTITIES}{agent.uuid.hex}/connection_events/"


def test_timeline_lists_events_newest_first_as_a_plain_array(timeline_agent, client_as, clock):
    # when
    response = client_as("owner_a").get(timeline_url(timeline_agent))

    # then
    assert response.status_code == 200
    assert response["X-Result-Count"] == "3"
    body = response.json()
    assert [(e["kind"], e["connection_name"], e["occurred_at"]) for e in body] == [
        ("connected", "conn-2", iso(clock.ago(3600))),
        ("disconnected", "conn-1", iso(clock.ago(2 * 3600))),
        ("connected", "conn-1", iso(clock.ago(3 * 3600))),
    ]
    subscription = EventSubscription.objects.get(agent_identity=timeline_agent)
    first = dict(body[0])
    assert uuid.UUID(first.pop("uuid"))
    assert first == {
        "kind": "connected",
        "occurred_at": iso(clock.ago(3600)),
        "connection_name": "conn-2",
        "subscription_uuid": str(subscription.uuid),
        "event_consumer_uuid": None,
        "node": NODE,
        "peer_host": "10.0.0.7",
        "transport": "stomp",
        "reason": "opened",
    }


def test_timeline_pages_with_link_and_result_count(timeline_agent, client_as):
    # when
    response = client_as("owner_a").get(timeline_url(timeline_agent), {"page_size": 1})

    # then
    assert response.status_code == 200
    assert [event["connection_name"] for event in response.json()] == ["conn-2"]
    assert response["X-Result-Count"] == "3"
    assert 'rel="next"' in response["Link"]
    assert "page=2" in response["Link"]
    assert "page=3" in response["Link"]


def test_timeline_second_page_holds_the_next_older_event(timeline_agent, client_as):
    # when
    response = client_as("owner_a").get(timeline_url(timeline_agent), {"page_size": 1, "page": 2})

    # then
    assert [(e["kind"], e["connection_name"]) for e in response.json()] == [
        ("disconnected", "conn-1")
    ]


@pytest.mark.parametrize(
    ("role", "code"),
    [
        ("anonymous", 401),
        ("outsider", 403),
        ("owner_b", 403),
        ("owner_a", 200),
        ("creator_a", 403),
        ("support", 200),
        ("staff", 200),
    ],
)
def test_timeline_permission_matrix(timeline_agent, client_as, role, code):
    # when
    response = client_as(role).get(timeline_url(timeline_agent))

    # then
    assert response.status_code == code
    if code == 200:
        assert len(response.json()) == 3
