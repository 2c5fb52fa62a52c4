"""GET /api/marketplace-site-agent-connection-stats/ with the management API mocked by
`responses`: who may call it, and what it returns.

Broker bodies are the captured RabbitMQ 3.10 responses in tests/fixtures/rabbitmq/
(owner vhost 9a2b…, offering 0120…, subscription users 18b4… over AMQP and 0233… over Web
STOMP, the latter listed before its stats were emitted).
"""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from rmq.nodes import node_label
from tests.kit.api import STATS_URL
from tests.kit.broker import (
    CAPTURED_AMQP_SUBSCRIPTION,
    CAPTURED_OFFERING,
    CAPTURED_OWNER,
    CAPTURED_STOMP_SUBSCRIPTION,
    MANAGEMENT,
    SNAPSHOT_CALLS,
    captured,
    mock_broker_snapshot,
)

AGENT_KEYS = {
    "uuid",
    "name",
    "offering_uuid",
    "offering_name",
    "version",
    "last_restarted",
    "services",
    "event_subscriptions",
    "queues",
}
NULLABLE_81_KEYS = {
    "event_consumer_uuid",
    "user_uuid",
    "user_username",
    "user_full_name",
    "user_is_staff",
    "auth_kind",
    "auth_token_prefix",
    "auth_token_name",
    "authorized_via",
    "delivery_blocked_reason",
}
RMQ_CONNECTION_KEYS = {"connected", "source_ip", "connected_at", "state", "recv_oct", "send_oct"}
QUEUE_KEYS = {"name", "messages", "consumers", "object_type", "kind"}
SUMMARY_KEYS = {
    "total_agents",
    "connected_agents",
    "disconnected_agents",
    "total_queued_messages",
    "total_subscriptions",
    "connected_subscriptions",
    "total_queues",
    "queues_missing_on_broker",
    "queues_without_consumers",
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _paths(broker: responses.RequestsMock) -> list[str]:
    return sorted(str(urlsplit(call.request.url).path) for call in broker.calls)


@pytest.mark.parametrize(
    ("role", "expected_status"),
    [
        ("anonymous", 401),
        ("user", 403),
        ("owner", 403),
        ("support_user", 200),
        ("staff_user", 200),
    ],
)
def test_stats_are_readable_only_by_staff_and_support(
    role, expected_status, request, identity, client_for, api_client, broker
):
    # given: an agent of the owner's customer and a broker that answers
    mock_broker_snapshot(broker)
    client = api_client if role == "anonymous" else client_for(request.getfixturevalue(role))

    # when
    response = client.get(STATS_URL)

    # then
    assert response.status_code == expected_status
    assert len(broker.calls) == (SNAPSHOT_CALLS if expected_status == 200 else 0)


def test_stats_merge_the_captured_broker_responses_into_the_documented_shape(
    captured_fleet, staff_user, client_for, broker
):
    # given
    mock_broker_snapshot(
        broker,
        connections=captured("connections_columns.json"),
        queues=captured("queues_columns.json"),
    )
    owner, alpha, beta = captured_fleet["owner"], captured_fleet["alpha"], captured_fleet["beta"]

    # when
    response = client_for(staff_user).get(STATS_URL)

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agents", "summary"}
    agents = {agent["name"]: agent for agent in body["agents"]}
    assert set(agents) == {"alpha", "beta"}
    for agent in agents.values():
        assert set(agent) >= AGENT_KEYS | NULLABLE_81_KEYS
        for sub in agent["event_subscriptions"]:
            assert set(sub["rmq_connection"]) >= RMQ_CONNECTION_KEYS
        for queue in agent["queues"]:
            assert set(queue) >= QUEUE_KEYS

    first = agents["alpha"]
    assert first["uuid"] == str(alpha.uuid)
    assert first["offering_uuid"] == str(CAPTURED_OFFERING)
    assert first["offering_name"] == "HPC"
    assert first["version"] == "1.0.0"
    assert first["last_restarted"] == _iso(alpha.created)
    assert first["connected"] is True
    assert first["event_consumer_uuid"] is None
    assert first["user_uuid"] == str(owner.uuid)
    assert first["user_username"] == owner.username
    assert first["user_full_name"] == "Ada Lovelace"
    assert first["user_is_staff"] is False
    for key in ("auth_kind", "auth_token_prefix", "auth_token_name", "authorized_via"):
        assert first[key] is None
    assert first["delivery_blocked_reason"] is None
    assert [(service["name"], service["state"]) for service in first["services"]] == [
        ("orders", "ACTIVE"),
        ("sync", "ERROR"),
    ]
    amqp, stomp = first["event_subscriptions"]
    assert amqp["uuid"] == str(CAPTURED_AMQP_SUBSCRIPTION)
    assert amqp["observable_objects"] == [{"object_type": "resource"}]
    assert amqp["rmq_connection"] == {
        "connected": True,
        "source_ip": "127.0.0.1",
        "connected_at": "2026-11-24T06:44:28.412000Z",
        "state": "running",
        "recv_oct": 477,
        "send_oct": 537,
        "node": "rabbit@vm",
        "protocol": "AMQP 0-9-1",
    }
    assert stomp["uuid"] == str(CAPTURED_STOMP_SUBSCRIPTION)
    assert stomp["rmq_connection"] == {
        "connected": True,
        "source_ip": "127.0.0.1",
        "connected_at": "2026-11-24T06:44:28.419000Z",
        "state": None,
        "recv_oct": None,
        "send_oct": None,
        "node": "rabbit@vm",
        "protocol": "Web STOMP 1.2",
    }
    queue_prefix = "_offering_012013ecc2e84a3c90e2d616541c82fb_"
    assert first["queues"] == [
        {
            "name": f"subscription_{CAPTURED_AMQP_SUBSCRIPTION.hex}{queue_prefix}resource",
            "vhost": CAPTURED_OWNER.hex,
            "messages": 5,
            "consumers": 0,
            "object_type": "resource",
            "kind": "legacy",
            "exists_on_broker": True,
            "state": "running",
            "node": None,
        },
        {
            "name": f"subscription_{CAPTURED_STOMP_SUBSCRIPTION.hex}{queue_prefix}order",
            "vhost": CAPTURED_OWNER.hex,
            "messages": 0,
            "consumers": 1,
            "object_type": "order",
            "kind": "legacy",
            "exists_on_broker": True,
            "state": "running",
            "node": None,
        },
    ]

    second = agents["beta"]
    assert second["uuid"] == str(beta.uuid)
    assert second["connected"] is False
    assert all(second[key] is None for key in NULLABLE_81_KEYS)
    (lonely,) = second["event_subscriptions"]
    assert lonely["rmq_connection"] == {
        "connected": False,
        "source_ip": None,
        "connected_at": None,
        "state": None,
        "recv_oct": None,
        "send_oct": None,
        "node": None,
        "protocol": None,
    }
    assert second["queues"] == [
        {
            "name": captured_fleet["missing"].queue_name,
            "vhost": captured_fleet["lonely"].user.uuid.hex,
            "messages": 0,
            "consumers": 0,
            "object_type": "order",
            "kind": "legacy",
            "exists_on_broker": False,
            "state": None,
            "node": None,
        }
    ]

    taken_at = datetime.fromisoformat(body["summary"].pop("snapshot_taken_at"))
    assert abs((datetime.now(UTC) - taken_at).total_seconds()) < 60
    assert body["summary"] == {
        "total_agents": 2,
        "connected_agents": 1,
        "disconnected_agents": 1,
        "total_queued_messages": 5,
        "total_subscriptions": 3,
        "connected_subscriptions": 2,
        "total_queues": 3,
        "queues_missing_on_broker": 1,
        "queues_without_consumers": 1,
        "queues_on_down_nodes": 0,
        "broker_node": node_label(MANAGEMENT),
    }
    assert set(body["summary"]) >= SUMMARY_KEYS


def test_stats_ask_the_broker_only_for_all_connections_queues_and_consumers_trimmed(
    captured_fleet, staff_user, client_for, broker
):
    # given
    mock_broker_snapshot(
        broker,
        connections=captured("connections_columns.json"),
        queues=captured("queues_columns.json"),
    )

    # when
    response = client_for(staff_user).get(STATS_URL)

    # then
    assert response.status_code == 200
    assert _paths(broker) == ["/api/connections", "/api/consumers", "/api/queues"]
    query = {
        urlsplit(call.request.url).path: parse_qs(urlsplit(call.request.url).query)
        for call in broker.calls
    }
    columns = {path: set(params["columns"][0].split(",")) for path, params in query.items()}
    assert {"user", "vhost", "peer_host", "connected_at", "state", "recv_oct", "send_oct"} <= (
        columns["/api/connections"]
    )
    # Depths from the queues themselves, not the (lagging, costlier) statistics database.
    assert columns["/api/queues"] == {"name", "vhost", "messages", "state", "node"}
    assert query["/api/queues"]["disable_stats"] == ["true"]
    assert query["/api/queues"]["enable_queue_totals"] == ["true"]
    assert columns["/api/consumers"] == {"queue.name", "queue.vhost"}
    assert all(call.request.method == "GET" for call in broker.calls)
