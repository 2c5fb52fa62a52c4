"""GET /api/marketplace-site-agent-connection-stats/<uuid>/: one agent in the list's shape."""

import pytest

from tests.factories import AgentServiceFactory, EventSubscriptionQueueFactory
from tests.kit.broker import broker_connection_of, broker_queue_of, mock_broker_snapshot


@pytest.fixture
def agent_with_queue(db):
    queue = EventSubscriptionQueueFactory()
    identity = queue.event_subscription.agent_identity
    AgentServiceFactory(identity=identity, name="order_process")
    return identity, queue


def mock_broker(broker, queue, *, connected: bool) -> None:
    subscription = queue.event_subscription
    mock_broker_snapshot(
        broker,
        connections=[broker_connection_of(subscription, peer_host="127.0.0.1")]
        if connected
        else [],
        queues=[broker_queue_of(queue, messages=4, consumers=1)],
    )


@pytest.mark.parametrize("form", ["hex", "dashed"])
def test_detail_returns_the_agent_as_the_list_does(
    form, agent_with_queue, broker, support_user, client_for
):
    identity, queue = agent_with_queue
    mock_broker(broker, queue, connected=True)
    client = client_for(support_user)
    key = identity.uuid.hex if form == "hex" else str(identity.uuid)

    detail = client.get(f"/api/marketplace-site-agent-connection-stats/{key}/")
    listed = client.get("/api/marketplace-site-agent-connection-stats/").json()["agents"]

    assert detail.status_code == 200
    assert detail.json() == listed[0]
    assert detail.json()["connected"] is True
    assert detail.json()["queues"][0]["messages"] == 4


def test_detail_of_an_unknown_agent_is_404_without_asking_about_others(
    agent_with_queue, broker, support_user, client_for
):
    _, queue = agent_with_queue
    mock_broker(broker, queue, connected=False)

    response = client_for(support_user).get(
        "/api/marketplace-site-agent-connection-stats/ffffffffffffffffffffffffffffffff/"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "No such agent.", "code": "not_found"}


def test_detail_with_a_uuid_shaped_but_invalid_key_is_404(support_user, client_for, db):
    response = client_for(support_user).get(
        "/api/marketplace-site-agent-connection-stats/0000-00000000-0000-0000-000000000000/"
    )

    assert response.status_code == 404


@pytest.mark.parametrize(("role", "expected"), [("anonymous", 401), ("owner", 403)])
def test_detail_is_for_staff_and_support_only(
    role, expected, agent_with_queue, api_client, client_for
):
    identity, _ = agent_with_queue
    client = api_client if role == "anonymous" else client_for(identity.created_by)

    response = client.get(f"/api/marketplace-site-agent-connection-stats/{identity.uuid.hex}/")

    assert response.status_code == expected


@pytest.mark.parametrize("key", ["not-a-uuid", "%C2%84", "123"])
def test_detail_with_a_malformed_key_is_a_json_404(key, support_user, client_for, db):
    response = client_for(support_user).get(f"/api/marketplace-site-agent-connection-stats/{key}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such agent.", "code": "not_found"}
