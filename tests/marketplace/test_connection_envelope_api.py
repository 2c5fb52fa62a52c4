"""The connection envelope API (/api/agents/...), the agent's timeline and last_seen.

Two tenants, A and B, each with an owner and an agent; A's agent was created by a user who
is not an owner. Time is a controllable clock, so every timestamp and every threshold
boundary in the envelope is asserted exactly.
"""

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agentstats.models import User
from marketplace.envelope.services import (
    record_agent_dispatch,
    record_agent_heartbeat,
    record_connection_closed,
    record_connection_opened,
    record_observer_beat,
    touch_agent_last_seen,
)
from marketplace.models import (
    AgentConnectionState,
    AgentIdentity,
    Customer,
    EventSubscription,
)
from rmq.events import ConnectionClosed, ConnectionOpened
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionFactory,
    OfferingFactory,
    UserFactory,
)

GET_CONNECTION = "/api/agents/get_connection/"
GET_STATS = "/api/agents/get_connection_stats/"
RECORD_DISPATCH = "/api/agents/record_dispatch/"
RECORD_HEARTBEAT = "/api/agents/record_heartbeat/"
IDENTITIES = "/api/marketplace-site-agent-identities/"
SERVICES = "/api/marketplace-site-agent-services/"

NODE = "rabbit@broker-0"
THRESHOLDS = {
    "healthy_seen_seconds": 600.0,
    "offline_after_seconds": 1800.0,
    "degraded_window_seconds": 900.0,
    "flap_threshold": 5,
    "observer_stale_after_seconds": 60.0,
}
NOT_FOUND = {"detail": "No such agent.", "code": "not_found"}
NOT_AUTHENTICATED = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}
NOT_MANAGER = {"detail": "You do not manage this agent.", "code": "permission_denied"}


@dataclass
class Clock:
    """What django.utils.timezone.now answers while a test runs."""

    now: datetime

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def ago(self, seconds: float) -> datetime:
        return self.now - timedelta(seconds=seconds)


@dataclass(frozen=True)
class Tenants:
    customer_a: Customer
    customer_b: Customer
    owner_a: User
    creator_a: User
    owner_b: User
    outsider: User
    support: User
    staff: User
    agent_a: AgentIdentity
    agent_b: AgentIdentity

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)

    def agent(self, tenant: str) -> AgentIdentity:
        return {"a": self.agent_a, "b": self.agent_b}[tenant]

    def customer(self, tenant: str) -> Customer:
        return {"a": self.customer_a, "b": self.customer_b}[tenant]


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.AGENT_HEALTHY_SEEN_SECONDS = THRESHOLDS["healthy_seen_seconds"]
    settings.AGENT_OFFLINE_AFTER_SECONDS = THRESHOLDS["offline_after_seconds"]
    settings.AGENT_DEGRADED_WINDOW_SECONDS = THRESHOLDS["degraded_window_seconds"]
    settings.AGENT_FLAP_THRESHOLD = THRESHOLDS["flap_threshold"]
    settings.OBSERVER_STALE_AFTER_SECONDS = THRESHOLDS["observer_stale_after_seconds"]
    settings.AGENT_WRITE_THROTTLE_RATE = ""


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock(now=datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def tenants(db, clock) -> Tenants:
    owner_a, creator_a, owner_b = UserFactory(), UserFactory(), UserFactory()
    customer_a = CustomerFactory(owners=[owner_a])
    customer_b = CustomerFactory(owners=[owner_b])
    return Tenants(
        customer_a=customer_a,
        customer_b=customer_b,
        owner_a=owner_a,
        creator_a=creator_a,
        owner_b=owner_b,
        outsider=UserFactory(),
        support=UserFactory(is_support=True),
        staff=UserFactory(is_staff=True),
        agent_a=AgentIdentityFactory(
            offering=OfferingFactory(customer=customer_a), created_by=creator_a
        ),
        agent_b=AgentIdentityFactory(
            offering=OfferingFactory(customer=customer_b), created_by=owner_b
        ),
    )


@pytest.fixture
def client_as(tenants, client_for) -> Callable[[str], APIClient]:
    """An API client for a role of the tenants world ('anonymous' has no credentials)."""

    def make(role: str) -> APIClient:
        user = tenants.user(role)
        return APIClient() if user is None else client_for(user)

    return make


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post(client: APIClient, url: str, body: dict):
    return client.post(url, body, format="json")


def fetch_envelope(client: APIClient, agent: AgentIdentity) -> dict:
    response = post(client, GET_CONNECTION, {"instance_id": str(agent.uuid)})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    return response.json()["connection"]


def subscribe(agent: AgentIdentity) -> EventSubscription:
    return EventSubscriptionFactory(agent_identity=agent, user=agent.created_by)


def open_connection(
    subscription: EventSubscription,
    *,
    name: str,
    at: datetime,
    protocol: str = "Web STOMP 1.2",
    node: str = NODE,
) -> None:
    opened = record_connection_opened(
        ConnectionOpened(
            name=name,
            user=subscription.uuid.hex,
            vhost=subscription.user.uuid.hex,
            node=node,
            peer_host="10.0.0.7",
            protocol=protocol,
            connected_at=at,
        )
    )
    assert opened is True


def close_connection(name: str, *, at: datetime) -> None:
    assert record_connection_closed(ConnectionClosed(name=name, node=NODE, closed_at=at))


def observer_beat(clock: Clock, *, seconds_ago: float = 0, is_broker_available: bool = True):
    record_observer_beat(is_broker_available=is_broker_available, at=clock.ago(seconds_ago))


def connection_state(agent: AgentIdentity) -> AgentConnectionState | None:
    return AgentConnectionState.objects.filter(identity=agent).first()


# --- the envelope ------------------------------------------------------------------------


def test_envelope_of_a_hosted_agent_never_seen_is_unknown_never_seen_over_polling(
    tenants, client_as
):
    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope == {
        "instance_id": str(tenants.agent_a.uuid),
        "agent_type": "waldur-site-agent",
        "tenant_id": str(tenants.customer_a.uuid),
        "deployment_mode": "hosted",
        "transport": "polling",
        "connection_status": "unknown",
        "status": "unknown",
        "status_reason": "never_seen",
        "owner_pod": None,
        "connected_since": None,
        "open_connections": 0,
        "last_dispatch_at": None,
        "dispatches_succeeded": 0,
        "dispatches_failed": 0,
        "last_dispatch_error": None,
        "last_seen": None,
        "last_heartbeat_at": None,
        "ws_mesh_pod_id": None,
        "ws_last_seen": None,
        "uptime_24h_seconds": 0.0,
        "flaps_24h": 0,
        "thresholds": THRESHOLDS,
        "last_error_log": None,
    }


def test_envelope_thresholds_are_the_settings_in_force(tenants, client_as, settings):
    # given
    settings.AGENT_HEALTHY_SEEN_SECONDS = 30
    settings.AGENT_OFFLINE_AFTER_SECONDS = 90
    settings.AGENT_DEGRADED_WINDOW_SECONDS = 45
    settings.AGENT_FLAP_THRESHOLD = 2
    settings.OBSERVER_STALE_AFTER_SECONDS = 15

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope["thresholds"] == {
        "healthy_seen_seconds": 30.0,
        "offline_after_seconds": 90.0,
        "degraded_window_seconds": 45.0,
        "flap_threshold": 2,
        "observer_stale_after_seconds": 15.0,
    }


def test_envelope_of_an_agent_with_a_web_stomp_connection_is_online_over_ws(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="10.0.0.7:41000 -> 10.0.0.2:15674", at=clock.ago(600))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope == {
        "instance_id": str(tenants.agent_a.uuid),
        "agent_type": "waldur-site-agent",
        "tenant_id": str(tenants.customer_a.uuid),
        "deployment_mode": "connected",
        "transport": "ws",
        "connection_status": "online",
        "status": "available",
        "status_reason": "connected",
        "owner_pod": NODE,
        "connected_since": iso(clock.ago(600)),
        "open_connections": 1,
        "last_dispatch_at": None,
        "dispatches_succeeded": 0,
        "dispatches_failed": 0,
        "last_dispatch_error": None,
        "last_seen": None,
        "last_heartbeat_at": None,
        "ws_mesh_pod_id": NODE,
        "ws_last_seen": iso(clock.ago(600)),
        "uptime_24h_seconds": 600.0,
        "flaps_24h": 0,
        "thresholds": THRESHOLDS,
        "last_error_log": None,
    }


def test_heartbeat_makes_a_connected_agent_healthy(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(600))

    # when
    response = post(
        client_as("creator_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)}
    )

    # then
    assert response.status_code == 204
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "healthy",
        "available",
        "active",
    )
    assert envelope["last_seen"] == iso(clock.now)
    assert envelope["last_heartbeat_at"] == iso(clock.now)
    assert (envelope["transport"], envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (
        "ws",
        NODE,
        NODE,
    )


def test_connected_agent_turns_from_healthy_to_online_one_second_after_healthy_seen_seconds(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(60))
    post(client_as("owner_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)})

    # when
    clock.advance(600)
    observer_beat(clock)
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)
    clock.advance(1)
    observer_beat(clock)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == ("healthy", "active")
    assert (past_limit["connection_status"], past_limit["status_reason"]) == (
        "online",
        "connected",
    )


def test_closed_connection_makes_the_agent_offline_with_one_flap_and_two_timeline_events(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(900))

    # when
    close_connection("conn-1", at=clock.ago(300))

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "offline",
        "offline",
        "no_broker_connection",
    )
    assert envelope["deployment_mode"] == "connected"
    assert envelope["transport"] == "ws"
    assert envelope["flaps_24h"] == 1
    assert envelope["open_connections"] == 0
    assert envelope["connected_since"] is None
    assert envelope["uptime_24h_seconds"] == 600.0
    timeline = client_as("staff").get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/connection_events/")
    assert [(event["kind"], event["reason"]) for event in timeline.json()] == [
        ("disconnected", "closed"),
        ("connected", "opened"),
    ]


def test_closed_connection_leaves_no_owner_pod_and_no_ws_mesh_pod(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(900))

    # when
    close_connection("conn-1", at=clock.ago(300))

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (None, None)


def test_agent_that_disconnects_flap_threshold_times_in_24h_is_degraded_flapping(
    tenants, client_as, clock, settings
):
    # given
    settings.AGENT_FLAP_THRESHOLD = 2
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    for number in (1, 2):
        open_connection(subscription, name=f"conn-{number}", at=clock.ago(4000 - 1000 * number))
        close_connection(f"conn-{number}", at=clock.ago(3500 - 1000 * number))
    open_connection(subscription, name="conn-3", at=clock.ago(100))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "degraded",
        "unhealthy",
        "flapping",
    )
    assert envelope["flaps_24h"] == 2
    assert envelope["uptime_24h_seconds"] == 500.0 + 500.0 + 100.0


def test_disconnects_older_than_24h_are_not_flaps(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-old", at=clock.ago(90_000))
    close_connection("conn-old", at=clock.ago(86_401))
    open_connection(subscription, name="conn-new", at=clock.ago(100))
    observer_beat(clock)

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope["flaps_24h"] == 0
    assert envelope["uptime_24h_seconds"] == 100.0


def test_stale_observer_serves_the_envelope_as_unknown_observer_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))
    observer_beat(clock, seconds_ago=THRESHOLDS["observer_stale_after_seconds"] + 1)

    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert response.status_code == 200
    envelope = response.json()["connection"]
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "unknown",
        "unknown",
        "observer_unavailable",
    )


def test_observer_that_cannot_reach_the_broker_serves_the_envelope_as_unknown_broker_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))
    observer_beat(clock, is_broker_available=False)

    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert response.status_code == 200
    envelope = response.json()["connection"]
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "unknown",
        "unknown",
        "broker_unavailable",
    )
    assert (envelope["owner_pod"], envelope["open_connections"]) == (NODE, 1)
    assert envelope["connected_since"] == iso(clock.ago(600))


def test_connected_agent_without_observer_row_is_unknown_observer_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (envelope["connection_status"], envelope["status_reason"]) == (
        "unknown",
        "observer_unavailable",
    )


@pytest.mark.parametrize(
    ("protocol", "transport", "ws_mesh_pod_id"),
    [("STOMP 1.2", "stomp", None), ("AMQP 0-9-1", "amqp", None), ("Web STOMP 1.2", "ws", NODE)],
)
def test_envelope_transport_follows_the_broker_protocol(
    tenants, client_as, clock, protocol, transport, ws_mesh_pod_id
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(60), protocol=protocol)

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (envelope["transport"], envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (
        transport,
        NODE,
        ws_mesh_pod_id,
    )


# --- tenant scoping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "agent_tenant", "tenant_id", "code"),
    [
        ("anonymous", "a", None, 401),
        ("outsider", "a", None, 404),
        ("owner_a", "a", None, 200),
        ("owner_a", "b", None, 404),
        ("owner_a", "a", "b", 404),
        ("owner_a", "b", "b", 404),
        ("creator_a", "a", None, 200),
        ("creator_a", "b", None, 404),
        ("support", "a", None, 200),
        ("support", "b", None, 200),
        ("support", "a", "a", 200),
        ("support", "a", "b", 404),
        ("staff", "a", None, 200),
        ("staff", "b", None, 200),
        ("staff", "a", "b", 404),
    ],
)
def test_get_connection_tenant_matrix(tenants, client_as, role, agent_tenant, tenant_id, code):
    # given
    client = client_as(role)
    agent = tenants.agent(agent_tenant)
    body = {"instance_id": str(agent.uuid)}
    if tenant_id is not None:
        body["tenant_id"] = str(tenants.customer(tenant_id).uuid)

    # when
    response = post(client, GET_CONNECTION, body)

    # then
    assert response.status_code == code
    if code == 200:
        assert response.json()["connection"]["instance_id"] == str(agent.uuid)
        assert response.json()["connection"]["tenant_id"] == str(
            tenants.customer(agent_tenant).uuid
        )
    if code == 404:
        random_agent = post(client, GET_CONNECTION, {**body, "instance_id": str(uuid.uuid4())})
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
        assert (random_agent.status_code, random_agent.json()) == (404, response.json())
    if code == 401:
        assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"instance_id": "not-a-uuid"}, {"instance_id": ["Must be a valid UUID."]}),
        ({}, {"instance_id": ["This field is required."]}),
        (
            {"instance_id": "00000000-0000-0000-0000-00000000000g", "tenant_id": "x"},
            {"instance_id": ["Must be a valid UUID."], "tenant_id": ["Must be a valid UUID."]},
        ),
    ],
    ids=["malformed-instance", "missing-instance", "malformed-both"],
)
def test_get_connection_rejects_malformed_ids_with_field_errors(tenants, client_as, body, errors):
    # when
    response = post(client_as("owner_a"), GET_CONNECTION, body)

    # then
    assert response.status_code == 400
    assert response.json() == errors


def test_get_connection_for_an_unknown_uuid_is_404_in_drf_shape(tenants, client_as):
    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(uuid.uuid4())})

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- get_connection_stats --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "tenant_id", "scope_kind", "agents"),
    [
        ("staff", None, "global", 2),
        ("support", None, "global", 2),
        ("support", "a", "tenant", 1),
        ("staff", "b", "tenant", 1),
        ("owner_a", None, "own", 1),
        ("creator_a", None, "own", 1),
        ("owner_a", "b", "tenant", 0),
        ("outsider", None, "own", 0),
    ],
)
def test_connection_stats_echo_the_scope_and_count_only_inside_it(
    tenants, client_as, role, tenant_id, scope_kind, agents
):
    # given
    tenant_uuid = None if tenant_id is None else str(tenants.customer(tenant_id).uuid)
    body = {} if tenant_uuid is None else {"tenant_id": tenant_uuid}

    # when
    response = post(client_as(role), GET_STATS, body)

    # then
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["scope"] == {"tenant_id": tenant_uuid, "kind": scope_kind}
    assert response.json()["stats"]["agents"] == agents


def test_connection_stats_need_authentication(tenants, client_as):
    # when
    response = post(client_as("anonymous"), GET_STATS, {})

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_connection_stats_reject_a_malformed_tenant_id(tenants, client_as):
    # when
    response = post(client_as("staff"), GET_STATS, {"tenant_id": "tenant-a"})

    # then
    assert response.status_code == 400
    assert response.json() == {"tenant_id": ["Must be a valid UUID."]}


@pytest.fixture
def fleet(tenants, clock) -> Tenants:
    """Tenant A: six agents, one per interesting state (besides agent_a, never seen).
    Tenant B: three more agents, all degraded, which A's owner must never count."""
    offering_a = tenants.agent_a.offering
    observer_beat(clock)

    def agent(offering, number: int) -> AgentIdentity:
        return AgentIdentityFactory(offering=offering, name=f"fleet-{number}")

    seen_now = agent(offering_a, 1)
    touch_agent_last_seen(seen_now, at=clock.now)

    ws_online = agent(offering_a, 2)
    open_connection(subscribe(ws_online), name="ws-online", at=clock.ago(60))

    stomp_healthy = agent(offering_a, 3)
    open_connection(
        subscribe(stomp_healthy), name="stomp-healthy", at=clock.ago(60), protocol="STOMP 1.2"
    )
    record_agent_heartbeat(stomp_healthy, at=clock.now)

    subscribe(agent(offering_a, 4))  # connected mode, never connected: offline over ws

    amqp_failing = agent(offering_a, 5)
    open_connection(
        subscribe(amqp_failing), name="amqp-failing", at=clock.ago(60), protocol="AMQP 0-9-1"
    )
    record_agent_dispatch(
        amqp_failing, is_success=False, error="boom", at=clock.now, seen_at=clock.now
    )

    offering_b = tenants.agent_b.offering
    for number in (6, 7, 8):
        failing = agent(offering_b, number)
        record_agent_dispatch(
            failing, is_success=False, error="boom", at=clock.now, seen_at=clock.now
        )
    return tenants


def test_owner_totals_count_each_mode_status_and_transport_of_its_own_tenant_only(fleet, client_as):
    # when
    response = post(client_as("owner_a"), GET_STATS, {})

    # then
    assert response.status_code == 200
    assert response.json()["stats"] == {
        "agents": 6,
        "deployment_mode": {"connected": 4, "hosted": 2},
        "connection_status": {
            "unknown": 1,
            "online": 1,
            "healthy": 2,
            "degraded": 1,
            "offline": 1,
        },
        "transport": {"ws": 2, "stomp": 1, "amqp": 1, "polling": 2},
    }


def test_global_totals_count_every_tenant_with_zero_keys_present(fleet, client_as):
    # when
    response = post(client_as("support"), GET_STATS, {})

    # then
    assert response.status_code == 200
    assert response.json()["stats"] == {
        "agents": 10,
        "deployment_mode": {"connected": 4, "hosted": 6},
        "connection_status": {
            "unknown": 2,
            "online": 1,
            "healthy": 2,
            "degraded": 4,
            "offline": 1,
        },
        "transport": {"ws": 2, "stomp": 1, "amqp": 1, "polling": 6},
    }


def test_tenant_totals_of_an_empty_tenant_are_all_zero(tenants, client_as):
    # given
    empty = CustomerFactory()

    # when
    response = post(client_as("staff"), GET_STATS, {"tenant_id": str(empty.uuid)})

    # then
    assert response.json()["stats"] == {
        "agents": 0,
        "deployment_mode": {"connected": 0, "hosted": 0},
        "connection_status": {"unknown": 0, "online": 0, "healthy": 0, "degraded": 0, "offline": 0},
        "transport": {"ws": 0, "stomp": 0, "amqp": 0, "polling": 0},
    }


def test_totals_judge_flapping_from_the_disconnects_of_the_last_24h_only(
    tenants, client_as, clock, settings
):
    # given
    settings.AGENT_FLAP_THRESHOLD = 1
    observer_beat(clock)
    for name, closed_seconds_ago in (("flapped-yesterday", 86_401), ("flapped-today", 3600)):
        subscription = subscribe(AgentIdentityFactory(offering=tenants.agent_b.offering))
        open_connection(subscription, name=f"{name}-old", at=clock.ago(90_000))
        close_connection(f"{name}-old", at=clock.ago(closed_seconds_ago))
        open_connection(subscription, name=f"{name}-live", at=clock.ago(60))

    # when
    response = post(client_as("owner_b"), GET_STATS, {})

    # then
    assert response.json()["stats"]["connection_status"] == {
        "unknown": 1,
        "online": 1,
        "healthy": 0,
        "degraded": 1,
        "offline": 0,
    }


def test_totals_agree_with_the_envelopes_of_the_same_agents(fleet, client_as):
    # given
    staff = client_as("staff")
    envelopes = [
        fetch_envelope(staff, agent) for agent in AgentIdentity.objects.order_by("name", "id")
    ]

    # when
    stats = post(staff, GET_STATS, {}).json()["stats"]

    # then
    for key in ("deployment_mode", "connection_status", "transport"):
        tallied = Counter(envelope[key] for envelope in envelopes)
        assert {name: count for name, count in stats[key].items() if count} == dict(tallied)


def populate_agent(offering, clock: Clock, number: int) -> None:
    """An agent with a row of every kind the totals read: state, subscription, an open
    connection and a closed one."""
    agent = AgentIdentityFactory(offering=offering, name=f"counted-{number}")
    subscription = subscribe(agent)
    open_connection(subscription, name=f"old-{number}", at=clock.ago(7200))
    close_connection(f"old-{number}", at=clock.ago(3600))
    open_connection(subscription, name=f"live-{number}", at=clock.ago(600))
    record_agent_dispatch(agent, is_success=False, error="boom", at=clock.now, seen_at=clock.now)


def test_connection_stats_make_the_same_number_of_queries_for_1_and_20_agents(
    tenants, client_as, clock
):
    # given
    offering = OfferingFactory(customer=CustomerFactory())
    observer_beat(clock)
    staff = client_as("staff")
    body = {"tenant_id": str(offering.customer.uuid)}
    populate_agent(offering, clock, 0)
    with CaptureQueriesContext(connection) as one_agent:
        small = post(staff, GET_STATS, body)
    for number in range(1, 20):
        populate_agent(offering, clock, number)

    # when
    with CaptureQueriesContext(connection) as twenty_agents:
        large = post(staff, GET_STATS, body)

    # then
    assert (small.json()["stats"]["agents"], large.json()["stats"]["agents"]) == (1, 20)
    assert large.json()["stats"]["connection_status"]["degraded"] == 20
    assert len(twenty_agents.captured_queries) == len(one_agent.captured_queries)


# --- record_dispatch and record_heartbeat ----------------------------------------------------


def recorded(agent: AgentIdentity) -> tuple[int, int, datetime | None]:
    state = connection_state(agent)
    if state is None:
        return (0, 0, None)
    return (state.dispatches_succeeded, state.dispatches_failed, state.last_heartbeat_at)


@pytest.mark.parametrize(
    ("url", "role", "code"),
    [
        (url, role, code)
        for url in (RECORD_DISPATCH, RECORD_HEARTBEAT)
        for role, code in [
            ("owner_a", 204),
            ("creator_a", 204),
            ("staff", 204),
            ("support", 403),
            ("outsider", 404),
            ("owner_b", 404),
            ("anonymous", 401),
        ]
    ],
)
def test_recording_an_agent_outcome_permission_matrix(tenants, client_as, clock, url, role, code):
    # given
    body = {"instance_id": str(tenants.agent_a.uuid), "succeeded": True}

    # when
    response = post(client_as(role), url, body)

    # then
    assert response.status_code == code
    expected_body = {403: NOT_MANAGER, 404: NOT_FOUND, 401: NOT_AUTHENTICATED}.get(code)
    assert (response.json() if response.content else None) == expected_body
    changed = {
        (RECORD_DISPATCH, 204): (1, 0, None),
        (RECORD_HEARTBEAT, 204): (0, 0, clock.now),
    }
    assert recorded(tenants.agent_a) == changed.get((url, code), (0, 0, None))


def test_dispatches_accumulate_in_the_counters(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)

    # when
    for succeeded in (True, True, False, True):
        response = post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": succeeded})
        assert response.status_code == 204

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["dispatches_succeeded"], envelope["dispatches_failed"]) == (3, 1)
    assert envelope["last_dispatch_at"] == iso(clock.now)


def test_failed_dispatch_records_the_error_and_degrades_the_envelope(tenants, client_as, clock):
    # given
    client = client_as("owner_a")

    # when
    response = post(
        client,
        RECORD_DISPATCH,
        {"instance_id": str(tenants.agent_a.uuid), "succeeded": False, "error": "sbatch: timeout"},
    )

    # then
    assert response.status_code == 204
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "degraded",
        "unhealthy",
        "recent_dispatch_failure",
    )
    assert (envelope["dispatches_succeeded"], envelope["dispatches_failed"]) == (0, 1)
    assert envelope["last_dispatch_error"] == "sbatch: timeout"
    assert envelope["last_dispatch_at"] == iso(clock.now)
    assert envelope["last_seen"] == iso(clock.now)


def test_failed_dispatch_stops_degrading_one_second_after_the_window(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": False, "error": "x"})
    clock.advance(THRESHOLDS["degraded_window_seconds"])
    post(client, RECORD_HEARTBEAT, {"instance_id": agent_id})
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # when
    clock.advance(1)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == (
        "degraded",
        "recent_dispatch_failure",
    )
    assert (past_limit["connection_status"], past_limit["status_reason"]) == ("healthy", "active")
    assert past_limit["last_dispatch_error"] == "x"


def test_hosted_agent_goes_offline_one_second_after_offline_after_seconds(
    tenants, client_as, clock
):
    # given
    post(client_as("owner_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)})
    clock.advance(THRESHOLDS["offline_after_seconds"])
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # when
    clock.advance(1)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == ("online", "seen")
    assert (past_limit["connection_status"], past_limit["status"], past_limit["status_reason"]) == (
        "offline",
        "offline",
        "not_seen_recently",
    )


def test_dispatch_time_given_by_the_agent_is_recorded_and_a_naive_time_is_utc(
    tenants, client_as, clock
):
    # given
    happened = clock.ago(120)
    naive = happened.replace(tzinfo=None).isoformat()

    # when
    response = post(
        client_as("owner_a"),
        RECORD_DISPATCH,
        {"instance_id": str(tenants.agent_a.uuid), "succeeded": True, "occurred_at": naive},
    )

    # then
    assert response.status_code == 204
    assert connection_state(tenants.agent_a).last_dispatch_at == happened


def test_an_earlier_dispatch_reported_late_does_not_move_last_dispatch_at_back(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": True})

    # when
    post(
        client,
        RECORD_DISPATCH,
        {"instance_id": agent_id, "succeeded": True, "occurred_at": iso(clock.ago(3600))},
    )

    # then
    assert connection_state(tenants.agent_a).last_dispatch_at == clock.now


def test_reporting_an_old_dispatch_keeps_last_seen_at_the_time_of_the_call(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)

    # when
    post(
        client,
        RECORD_DISPATCH,
        {"instance_id": agent_id, "succeeded": True, "occurred_at": iso(clock.ago(7200))},
    )

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert envelope["last_seen"] == iso(clock.now)
    assert (envelope["connection_status"], envelope["status_reason"]) == ("healthy", "active")


def test_an_earlier_failure_reported_late_keeps_the_error_of_the_latest_failure(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": False, "error": "new"})

    # when
    post(
        client,
        RECORD_DISPATCH,
        {
            "instance_id": agent_id,
            "succeeded": False,
            "error": "old",
            "occurred_at": iso(clock.ago(600)),
        },
    )

    # then
    state = connection_state(tenants.agent_a)
    assert (state.last_dispatch_failed_at, state.last_dispatch_error) == (clock.now, "new")


@pytest.mark.parametrize(
    ("url", "body", "errors"),
    [
        (
            RECORD_DISPATCH,
            {},
            {"instance_id": ["This field is required."], "succeeded": ["This field is required."]},
        ),
        (
            RECORD_DISPATCH,
            {"instance_id": "agent-1", "succeeded": "maybe"},
            {"instance_id": ["Must be a valid UUID."], "succeeded": ["Must be a valid boolean."]},
        ),
        (
            RECORD_DISPATCH,
            {"instance_id": "AGENT", "succeeded": False, "error": "e" * 2001},
            {
                "instance_id": ["Must be a valid UUID."],
                "error": ["Ensure this field has no more than 2000 characters."],
            },
        ),
        (RECORD_HEARTBEAT, {}, {"instance_id": ["This field is required."]}),
        (RECORD_HEARTBEAT, {"instance_id": "7"}, {"instance_id": ["Must be a valid UUID."]}),
    ],
    ids=[
        "dispatch-empty",
        "dispatch-malformed",
        "dispatch-error-too-long",
        "beat-empty",
        "beat-int",
    ],
)
def test_recording_with_a_bad_body_is_400_with_field_errors_and_records_nothing(
    tenants, client_as, url, body, errors
):
    # when
    response = post(client_as("owner_a"), url, body)

    # then
    assert response.status_code == 400
    assert response.json() == errors
    assert connection_state(tenants.agent_a) is None


# --- last_seen -----------------------------------------------------------------------------


def _register_service(client, agent):
    return post(client, f"{IDENTITIES}{agent.uuid.hex}/register_service/", {"name": "orders"})


def _patch_identity(client, agent):
    return client.patch(f"{IDENTITIES}{agent.uuid.hex}/", {"version": "1.2.0"}, format="json")


def _reregister_identity(client, agent):
    return post(client, IDENTITIES, {"offering": str(agent.offering.uuid), "name": agent.name})


def _register_processor(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(
        client,
        f"{SERVICES}{service.uuid.hex}/register_processor/",
        {"name": "slurm", "backend_type": "slurm"},
    )


def _set_statistics(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(client, f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": {"a": 1}})


def _record_heartbeat(client, agent):
    return post(client, RECORD_HEARTBEAT, {"instance_id": str(agent.uuid)})


def _record_dispatch(client, agent):
    return post(client, RECORD_DISPATCH, {"instance_id": str(agent.uuid), "succeeded": True})


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (_register_service, 201),
        (_patch_identity, 200),
        (_reregister_identity, 201),
        (_register_processor, 201),
        (_set_statistics, 200),
        (_record_heartbeat, 204),
        (_record_dispatch, 204),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).lstrip("_"),
)
def test_every_authenticated_agent_write_call_refreshes_last_seen(
    tenants, client_as, clock, call, code
):
    # given
    client = client_as("creator_a")
    clock.advance(30)

    # when
    response = call(client, tenants.agent_a)

    # then
    assert response.status_code == code
    assert connection_state(tenants.agent_a).last_seen == clock.now


def test_a_later_call_moves_last_seen_forward(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    _register_service(client, tenants.agent_a)

    # when
    clock.advance(45)
    _register_service(client, tenants.agent_a)

    # then
    assert connection_state(tenants.agent_a).last_seen == clock.now


def test_support_reads_do_not_touch_last_seen(tenants, client_as):
    # given
    support = client_as("support")

    # when
    detail = support.get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/")
    timeline = support.get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/connection_events/")
    envelope = post(support, GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert (detail.status_code, timeline.status_code, envelope.status_code) == (200, 200, 200)
    assert connection_state(tenants.agent_a) is None


def test_support_write_that_is_refused_does_not_touch_last_seen(tenants, client_as):
    # when
    response = _register_service(client_as("support"), tenants.agent_a)

    # then
    assert response.status_code == 403
    assert connection_state(tenants.agent_a) is None


# --- the timeline ----------------------------------------------------------------------------


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
        ("creator_a", 200),
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
