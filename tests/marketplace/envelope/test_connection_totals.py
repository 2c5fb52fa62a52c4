"""POST /api/agents/get_connection_stats/: agents totalled by deployment mode, connection
status and transport within the caller's scope, at a fixed query count."""

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.envelope.services import (
    record_agent_dispatch,
    record_agent_heartbeat,
    touch_agent_last_seen,
)
from marketplace.models import AgentIdentity
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory
from tests.kit.clock import FakeClock
from tests.kit.envelope import (
    GET_STATS,
    NOT_AUTHENTICATED,
    Tenants,
    close_connection,
    fetch_envelope,
    observer_beat,
    open_connection,
    post,
    subscribe,
)


@pytest.mark.parametrize(
    ("role", "tenant_id", "scope_kind", "agents"),
    [
        ("staff", None, "global", 2),
        ("support", None, "global", 2),
        ("support", "a", "tenant", 1),
        ("staff", "b", "tenant", 1),
        ("owner_a", None, "own", 1),
        ("creator_a", None, "own", 0),
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
    assert (response.json()["tenant_id"], response.json()["scope"]) == (tenant_uuid, scope_kind)
    assert "agent_type" not in response.json()
    assert response.json()["stats"]["total"] == agents


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
    touch_agent_last_seen(seen_now, at=clock.now())

    ws_online = agent(offering_a, 2)
    open_connection(subscribe(ws_online), name="ws-online", at=clock.ago(60))

    stomp_healthy = agent(offering_a, 3)
    open_connection(
        subscribe(stomp_healthy), name="stomp-healthy", at=clock.ago(60), protocol="STOMP 1.2"
    )
    record_agent_heartbeat(stomp_healthy, at=clock.now())

    subscribe(agent(offering_a, 4))  # connected mode, never connected: offline over ws

    amqp_failing = agent(offering_a, 5)
    open_connection(
        subscribe(amqp_failing), name="amqp-failing", at=clock.ago(60), protocol="AMQP 0-9-1"
    )
    record_agent_dispatch(
        amqp_failing, is_success=False, error="boom", at=clock.now(), seen_at=clock.now()
    )

    offering_b = tenants.agent_b.offering
    for number in (6, 7, 8):
        failing = agent(offering_b, number)
        record_agent_dispatch(
            failing, is_success=False, error="boom", at=clock.now(), seen_at=clock.now()
        )
    return tenants


def test_owner_totals_count_each_mode_status_and_transport_of_its_own_tenant_only(fleet, client_as):
    # when
    response = post(client_as("owner_a"), GET_STATS, {})

    # then
    assert response.status_code == 200
    assert response.json()["stats"] == {
        "total": 6,
        "by_deployment_mode": {"connected": 4, "hosted": 2},
        "by_status": {
            "unknown": 1,
            "online": 1,
            "healthy": 2,
            "degraded": 1,
            "offline": 1,
        },
        "by_transport": {"ws": 4, "callback": 2},
        "by_transport_detail": {"ws": 2, "stomp": 1, "amqp": 1, "polling": 2},
    }


def test_global_totals_count_every_tenant_with_zero_keys_present(fleet, client_as):
    # when
    response = post(client_as("support"), GET_STATS, {})

    # then
    assert response.status_code == 200
    assert response.json()["stats"] == {
        "total": 10,
        "by_deployment_mode": {"connected": 4, "hosted": 6},
        "by_status": {
            "unknown": 2,
            "online": 1,
            "healthy": 2,
            "degraded": 4,
            "offline": 1,
        },
        "by_transport": {"ws": 4, "callback": 6},
        "by_transport_detail": {"ws": 2, "stomp": 1, "amqp": 1, "polling": 6},
    }


def test_tenant_totals_of_an_empty_tenant_are_all_zero(tenants, client_as):
    # given
    empty = CustomerFactory()

    # when
    response = post(client_as("staff"), GET_STATS, {"tenant_id": str(empty.uuid)})

    # then
    assert response.json()["stats"] == {
        "total": 0,
        "by_deployment_mode": {"connected": 0, "hosted": 0},
        "by_status": {"unknown": 0, "online": 0, "healthy": 0, "degraded": 0, "offline": 0},
        "by_transport": {"ws": 0, "callback": 0},
        "by_transport_detail": {"ws": 0, "stomp": 0, "amqp": 0, "polling": 0},
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
    assert response.json()["stats"]["by_status"] == {
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
    totals = {
        "deployment_mode": "by_deployment_mode",
        "connection_status": "by_status",
        "transport": "by_transport",
        "transport_detail": "by_transport_detail",
    }
    for key, total in totals.items():
        tallied = Counter(envelope[key] for envelope in envelopes)
        assert {name: count for name, count in stats[total].items() if count} == dict(tallied)


def populate_agent(offering, clock: FakeClock, number: int) -> None:
    """An agent with a row of every kind the totals read: state, subscription, an open
    connection and a closed one."""
    agent = AgentIdentityFactory(offering=offering, name=f"counted-{number}")
    subscription = subscribe(agent)
    open_connection(subscription, name=f"old-{number}", at=clock.ago(7200))
    close_connection(f"old-{number}", at=clock.ago(3600))
    open_connection(subscription, name=f"live-{number}", at=clock.ago(600))
    record_agent_dispatch(
        agent, is_success=False, error="boom", at=clock.now(), seen_at=clock.now()
    )


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
    assert (small.json()["stats"]["total"], large.json()["stats"]["total"]) == (1, 20)
    assert large.json()["stats"]["by_status"]["degraded"] == 20
    assert len(twenty_agents.captured_queries) == len(one_agent.captured_queries)
