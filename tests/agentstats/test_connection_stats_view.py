"""GET /api/marketplace-site-agent-connection-stats/ with the management API mocked by
`responses`: who may call it, what it returns, what it costs, how it filters, and how it
fails when the broker cannot be asked.

Broker bodies start from the captured RabbitMQ 3.10 responses in tests/fixtures/rabbitmq/
(owner vhost 9a2b…, offering 0120…, subscription users 18b4… over AMQP and 0233… over Web
STOMP, the latter listed before its stats were emitted).
"""

import copy
import json
import logging
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
import requests
import responses
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.names import AgentServiceState
from tests.broker_mocks import SNAPSHOT_CALLS, mock_broker_snapshot
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
    UserFactory,
)

URL = "/api/marketplace-site-agent-connection-stats/"
MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
CONNECTIONS_URL = f"{MANAGEMENT}/api/connections"
QUEUES_URL = f"{MANAGEMENT}/api/queues"
CONSUMERS_URL = f"{MANAGEMENT}/api/consumers"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rabbitmq"

# Identifiers of the captured responses.
OWNER_VHOST = UUID("9a2b386ca3464aee9f313c0f20518f57")
OFFERING = UUID("012013ecc2e84a3c90e2d616541c82fb")
AMQP_SUBSCRIPTION = UUID("18b4ecbe541b46b38c9e129f3485911f")
STOMP_SUBSCRIPTION = UUID("0233d0c94a9544c0bca9b1709dc3c24d")

# SQL queries of one stats request: the token, the agents with offering and creator, their
# services, their subscriptions with owner, the subscriptions' queues, the queues' offerings.
STATS_QUERIES = 6  # token, agents, services, subscriptions, queues, event consumers

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


def _captured(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _broker_connection(subscription: Any, *, index: int = 0) -> dict[str, Any]:
    """A captured AMQP connection of a subscription user, moved to another subscription."""
    item = copy.deepcopy(_captured("connections_columns.json")[1])
    port = 40000 + index
    item.update(
        name=f"10.0.0.1:{port} -> 127.0.0.1:5672",
        user=subscription.uuid.hex,
        vhost=subscription.user.uuid.hex,
        peer_port=port,
    )
    return item


def _broker_queue(queue: Any, *, messages: int = 0, consumers: int = 1) -> dict[str, Any]:
    """A captured queue, renamed to a database queue."""
    item = copy.deepcopy(_captured("queues_columns.json")[0])
    item.update(name=queue.queue_name, vhost=queue.vhost, messages=messages, consumers=consumers)
    return item


def _mock_broker(
    broker: responses.RequestsMock,
    *,
    connections: list[dict[str, Any]] | None = None,
    queues: list[dict[str, Any]] | None = None,
) -> None:
    mock_broker_snapshot(broker, base=MANAGEMENT, connections=connections, queues=queues)


def _paths(broker: responses.RequestsMock) -> list[str]:
    return sorted(str(urlsplit(call.request.url).path) for call in broker.calls)


# --- who may ask ------------------------------------------------------------------------


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
    _mock_broker(broker)
    client = api_client if role == "anonymous" else client_for(request.getfixturevalue(role))

    # when
    response = client.get(URL)

    # then
    assert response.status_code == expected_status
    assert len(broker.calls) == (SNAPSHOT_CALLS if expected_status == 200 else 0)


# --- what it returns ----------------------------------------------------------------------


@pytest.fixture
def captured_fleet(db):
    """The rows behind the captured responses plus a disconnected agent elsewhere.

    alpha: offering 0120… of owner 9a2b…, subscriptions 18b4… (AMQP, resource queue with 5
    messages and no consumer) and 0233… (Web STOMP without stats yet, consumed order queue).
    beta: no creator, one subscription without a connection and a queue the broker lacks.
    """
    owner = UserFactory(uuid=OWNER_VHOST, first_name="Ada", last_name="Lovelace")
    offering = OfferingFactory(uuid=OFFERING, name="HPC", customer=CustomerFactory(owners=[owner]))
    alpha = AgentIdentityFactory(offering=offering, name="alpha", created_by=owner)
    AgentServiceFactory(identity=alpha, name="orders", state=AgentServiceState.ACTIVE)
    AgentServiceFactory(identity=alpha, name="sync", state=AgentServiceState.ERROR)
    amqp = EventSubscriptionFactory(
        uuid=AMQP_SUBSCRIPTION,
        agent_identity=alpha,
        observable_objects=[{"object_type": "resource"}],
    )
    stomp = EventSubscriptionFactory(
        uuid=STOMP_SUBSCRIPTION,
        agent_identity=alpha,
        observable_objects=[{"object_type": "order"}],
    )
    EventSubscriptionQueueFactory(event_subscription=amqp, object_type="resource")
    EventSubscriptionQueueFactory(event_subscription=stomp, object_type="order")

    beta = AgentIdentityFactory(name="beta", created_by=None)
    lonely = EventSubscriptionFactory(agent_identity=beta, user=UserFactory())
    missing = EventSubscriptionQueueFactory(event_subscription=lonely, object_type="order")
    return {"owner": owner, "alpha": alpha, "beta": beta, "lonely": lonely, "missing": missing}


def test_stats_merge_the_captured_broker_responses_into_the_documented_shape(
    captured_fleet, staff_user, client_for, broker
):
    # given
    _mock_broker(
        broker,
        connections=_captured("connections_columns.json"),
        queues=_captured("queues_columns.json"),
    )
    owner, alpha, beta = captured_fleet["owner"], captured_fleet["alpha"], captured_fleet["beta"]

    # when
    response = client_for(staff_user).get(URL)

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
    assert first["offering_uuid"] == str(OFFERING)
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
    assert amqp["uuid"] == str(AMQP_SUBSCRIPTION)
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
    assert stomp["uuid"] == str(STOMP_SUBSCRIPTION)
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
            "name": f"subscription_{AMQP_SUBSCRIPTION.hex}{queue_prefix}resource",
            "vhost": OWNER_VHOST.hex,
            "messages": 5,
            "consumers": 0,
            "object_type": "resource",
            "kind": "legacy",
            "exists_on_broker": True,
        },
        {
            "name": f"subscription_{STOMP_SUBSCRIPTION.hex}{queue_prefix}order",
            "vhost": OWNER_VHOST.hex,
            "messages": 0,
            "consumers": 1,
            "object_type": "order",
            "kind": "legacy",
            "exists_on_broker": True,
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
    }
    assert set(body["summary"]) >= SUMMARY_KEYS


def test_stats_ask_the_broker_only_for_all_connections_queues_and_consumers_trimmed(
    captured_fleet, staff_user, client_for, broker
):
    # given
    _mock_broker(
        broker,
        connections=_captured("connections_columns.json"),
        queues=_captured("queues_columns.json"),
    )

    # when
    response = client_for(staff_user).get(URL)

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
    assert columns["/api/queues"] == {"name", "vhost", "messages"}
    assert query["/api/queues"]["disable_stats"] == ["true"]
    assert query["/api/queues"]["enable_queue_totals"] == ["true"]
    assert columns["/api/consumers"] == {"queue.name", "queue.vhost"}
    assert all(call.request.method == "GET" for call in broker.calls)


# --- what it costs --------------------------------------------------------------------------


def _add_agents(offering: Any, owner: Any, count: int, *, start: int) -> list[Any]:
    """Agents with 3 services, 2 subscriptions and 2 queues each; returns the queues."""
    queues = []
    for number in range(start, start + count):
        agent = AgentIdentityFactory(
            offering=offering, name=f"agent-{number:03d}", created_by=owner
        )
        for service in ("orders", "membership", "usage"):
            AgentServiceFactory(identity=agent, name=service)
        for object_type in ("order", "resource"):
            sub = EventSubscriptionFactory(
                agent_identity=agent, observable_objects=[{"object_type": object_type}]
            )
            queues.append(
                EventSubscriptionQueueFactory(event_subscription=sub, object_type=object_type)
            )
    return queues


def _ask_with_every_subscription_connected(
    client: Any, broker: responses.RequestsMock, queues: list[Any]
) -> tuple[Any, int, int]:
    broker.reset()
    cache.clear()  # each request must ask the broker, not reuse the shared snapshot
    _mock_broker(
        broker,
        connections=[
            _broker_connection(queue.event_subscription, index=index)
            for index, queue in enumerate(queues)
        ],
        queues=[_broker_queue(queue, messages=1) for queue in queues],
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    return response, len(queries), len(broker.calls)


def test_stats_cost_the_same_queries_and_broker_calls_for_1_and_50_agents(
    owner, offering, staff_user, client_for, broker
):
    # given
    client = client_for(staff_user)
    queues = _add_agents(offering, owner, 1, start=0)

    # when
    one, one_queries, one_calls = _ask_with_every_subscription_connected(client, broker, queues)
    queues += _add_agents(offering, owner, 49, start=1)
    fifty, fifty_queries, fifty_calls = _ask_with_every_subscription_connected(
        client, broker, queues
    )

    # then
    assert (one.status_code, fifty.status_code) == (200, 200)
    assert one.json()["summary"]["connected_agents"] == 1
    assert fifty.json()["summary"]["connected_agents"] == 50
    assert fifty.json()["summary"]["total_queued_messages"] == 100
    assert all(len(agent["services"]) == 3 for agent in fifty.json()["agents"])
    assert one_queries == fifty_queries == STATS_QUERIES
    assert one_calls == fifty_calls == SNAPSHOT_CALLS


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
def filter_fleet(db):
    """alpha-login (Active twice, connected, 1 message) and beta-batch (Error, disconnected,
    10 messages) on the first customer's offering; gamma-login (Idle, connected, 100
    messages) on the second customer's offering."""
    first_offering, second_offering = OfferingFactory(), OfferingFactory()
    connections, queues = [], []
    plan = [
        ("alpha-login", first_offering, [AgentServiceState.ACTIVE] * 2, True, 1),
        ("beta-batch", first_offering, [AgentServiceState.ERROR], False, 10),
        ("gamma-login", second_offering, [AgentServiceState.IDLE], True, 100),
    ]
    for index, (name, offering, states, is_connected, messages) in enumerate(plan):
        agent = AgentIdentityFactory(offering=offering, name=name)
        for state in states:
            AgentServiceFactory(identity=agent, state=state)
        queue = EventSubscriptionQueueFactory(
            event_subscription=EventSubscriptionFactory(agent_identity=agent)
        )
        queues.append(_broker_queue(queue, messages=messages))
        if is_connected:
            connections.append(_broker_connection(queue.event_subscription, index=index))
    return {
        "first_offering": first_offering,
        "second_customer": second_offering.customer,
        "connections": connections,
        "queues": queues,
    }


@pytest.mark.parametrize(
    ("params", "expected_names", "expected_connected", "expected_messages"),
    [
        ({}, ["alpha-login", "beta-batch", "gamma-login"], 2, 111),
        ({"offering_uuid": "first_offering"}, ["alpha-login", "beta-batch"], 1, 11),
        ({"customer_uuid": "second_customer"}, ["gamma-login"], 1, 100),
        ({"connected": "true"}, ["alpha-login", "gamma-login"], 2, 101),
        ({"connected": "false"}, ["beta-batch"], 0, 10),
        ({"service_state": "ERROR"}, ["beta-batch"], 0, 10),
        ({"service_state": "idle"}, ["gamma-login"], 1, 100),
        ({"service_state": "Active"}, ["alpha-login"], 1, 1),
        ({"name": "LOGIN"}, ["alpha-login", "gamma-login"], 2, 101),
        ({"name": "a-bat"}, ["beta-batch"], 0, 10),
        ({"offering_uuid": "first_offering", "connected": "false"}, ["beta-batch"], 0, 10),
    ],
)
def test_stats_filters_narrow_the_agents_and_the_summary_follows(
    params,
    expected_names,
    expected_connected,
    expected_messages,
    filter_fleet,
    staff_user,
    client_for,
    broker,
):
    # given
    _mock_broker(broker, connections=filter_fleet["connections"], queues=filter_fleet["queues"])
    query = {
        key: str(filter_fleet[value].uuid) if key.endswith("_uuid") else value
        for key, value in params.items()
    }

    # when
    response = client_for(staff_user).get(URL, query)

    # then
    assert response.status_code == 200
    body = response.json()
    assert sorted(agent["name"] for agent in body["agents"]) == expected_names
    assert body["summary"]["total_agents"] == len(expected_names)
    assert body["summary"]["connected_agents"] == expected_connected
    assert body["summary"]["disconnected_agents"] == len(expected_names) - expected_connected
    assert body["summary"]["total_queued_messages"] == expected_messages
    assert body["summary"]["total_queues"] == len(expected_names)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offering_uuid", "not-a-uuid"),
        ("customer_uuid", "12345"),
        ("connected", "maybe"),
        ("service_state", "busy"),
    ],
)
def test_stats_reject_an_invalid_filter_with_a_field_error_before_asking_the_broker(
    field, value, staff_user, client_for, broker
):
    # given
    _mock_broker(broker)

    # when
    response = client_for(staff_user).get(URL, {field: value})

    # then
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert isinstance(body[field], list)
    assert body[field]
    assert len(broker.calls) == 0


# --- how it fails ---------------------------------------------------------------------------

SECRET = "pw-Zq8-never-echo-this"
TRUNCATED = json.dumps(_captured("connections_columns.json"))[:700]


def _without_user() -> list[dict[str, Any]]:
    items = _captured("connections_columns.json")
    del items[1]["user"]
    return items


def _beyond_any_date() -> list[dict[str, Any]]:
    items = _captured("connections_columns.json")
    items[1]["connected_at"] = 10**20
    return items


BROKEN_CONNECTIONS: list[Any] = [
    pytest.param({"body": requests.ConnectionError("Connection refused")}, id="refused"),
    pytest.param({"body": requests.ReadTimeout("Read timed out. (read timeout=5)")}, id="timeout"),
    pytest.param({"status": 500, "json": {"error": "Internal Server Error"}}, id="http-500"),
    pytest.param(
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        id="http-502",
    ),
    pytest.param(
        {"status": 401, "json": {"error": "not_authorized", "reason": "Login failed"}},
        id="http-401",
    ),
    pytest.param(
        {"body": "<html>RabbitMQ Management</html>", "content_type": "text/html"}, id="not-json"
    ),
    pytest.param({"body": TRUNCATED, "content_type": "application/json"}, id="truncated-json"),
    pytest.param({"json": {"items": _captured("connections_columns.json")}}, id="dict-not-list"),
    pytest.param({"json": ["publisher", "agent-amqp"]}, id="list-of-strings"),
    pytest.param({"json": _without_user()}, id="connection-without-user"),
    pytest.param({"json": _beyond_any_date()}, id="connected-at-beyond-any-date"),
]


@pytest.mark.parametrize("failure", BROKEN_CONNECTIONS)
def test_stats_return_503_broker_unavailable_without_leaking_the_password(
    failure, captured_fleet, staff_user, client_for, broker, settings, caplog
):
    # given: a distinctive management password and a broker whose connections call fails
    settings.RABBITMQ_USER = "monitor"
    settings.RABBITMQ_PASSWORD = SECRET
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    broker.add(responses.GET, QUEUES_URL, json=_captured("queues_columns.json"))
    broker.add(responses.GET, CONSUMERS_URL, json=_captured("consumers.json"))
    caplog.set_level(logging.DEBUG)

    # when
    response = client_for(staff_user).get(URL)

    # then
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["code"] == "broker_unavailable"
    credentials = b64encode(f"monitor:{SECRET}".encode()).decode()
    assert broker.calls[0].request.headers["Authorization"] == f"Basic {credentials}"
    assert caplog.records
    for leak in (SECRET, credentials):
        assert leak not in response.content.decode()
        assert leak not in caplog.text


@pytest.mark.parametrize(
    "failing_url",
    [CONNECTIONS_URL, QUEUES_URL, CONSUMERS_URL],
    ids=["connections", "queues", "consumers"],
)
def test_stats_return_503_not_a_disconnected_fleet_when_either_broker_call_fails(
    failing_url, captured_fleet, staff_user, client_for, broker
):
    # given: alpha is connected according to the captured connections
    answers: dict[str, Callable[[], dict[str, Any]]] = {
        CONNECTIONS_URL: lambda: {"json": _captured("connections_columns.json")},
        QUEUES_URL: lambda: {"json": _captured("queues_columns.json")},
        CONSUMERS_URL: lambda: {"json": _captured("consumers.json")},
    }
    for url, answer in answers.items():
        kwargs = {"status": 502, "body": "bad gateway"} if url == failing_url else answer()
        broker.add(responses.GET, url, **kwargs)

    # when
    response = client_for(staff_user).get(URL)

    # then
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert "agents" not in response.json()
