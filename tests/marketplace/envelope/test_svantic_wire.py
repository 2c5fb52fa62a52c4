"""A client written from Svantic's documentation reads our get_connection and
get_connection_stats unchanged: Svantic's two transports, every documented key, the
agent_type filter echoed, and the totals in a fixed number of queries."""

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from marketplace.names import AGENT_TYPE
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.envelope import (
    GET_CONNECTION,
    GET_STATS,
    observer_beat,
    open_connection,
    post,
    subscribe,
)
from tests.kit.svantic import SvanticShapeError, parse_connection_answer, parse_stats_answer

# Token (with its user), the agents with their facts, the observer: whatever the fleet size.
STATS_QUERIES = 3


@pytest.fixture
def mixed_fleet(tenants, clock):
    """Tenant A: agent_a (hosted, never seen) and two connected agents, one over STOMP."""
    observer_beat(clock)
    offering = tenants.agent_a.offering
    ws_agent = AgentIdentityFactory(offering=offering, name="ws-agent")
    open_connection(subscribe(ws_agent), name="ws-agent-conn", at=clock.ago(60))
    stomp_agent = AgentIdentityFactory(offering=offering, name="stomp-agent")
    open_connection(
        subscribe(stomp_agent), name="stomp-conn", at=clock.ago(60), protocol="STOMP 1.2"
    )
    return {"hosted": tenants.agent_a, "ws": ws_agent, "stomp": stomp_agent}


@pytest.mark.parametrize(
    ("agent", "deployment_mode", "transport", "transport_detail"),
    [
        ("hosted", "hosted", "callback", "polling"),
        ("ws", "connected", "ws", "ws"),
        ("stomp", "connected", "ws", "stomp"),
    ],
)
def test_a_svantic_client_reads_the_envelope_with_svantics_transport(
    mixed_fleet, client_as, agent, deployment_mode, transport, transport_detail
):
    # when
    response = post(
        client_as("owner_a"), GET_CONNECTION, {"instance_id": str(mixed_fleet[agent].uuid)}
    )

    # then
    connection_ = parse_connection_answer(response.json())
    assert (connection_.deployment_mode, connection_.transport) == (deployment_mode, transport)
    assert connection_.instance_id == str(mixed_fleet[agent].uuid)
    assert connection_.agent_type == AGENT_TYPE
    assert response.json()["connection"]["transport_detail"] == transport_detail


def test_a_svantic_client_reads_the_stats_of_its_tenant(mixed_fleet, tenants, client_as):
    # when
    body = {"tenant_id": str(tenants.customer_a.uuid), "agent_type": AGENT_TYPE}
    response = post(client_as("owner_a"), GET_STATS, body)

    # then
    answer = parse_stats_answer(response.json())
    assert (answer.tenant_id, answer.agent_type) == (str(tenants.customer_a.uuid), AGENT_TYPE)
    assert answer.stats.total == 3
    assert answer.stats.by_deployment_mode == {"hosted": 1, "connected": 2}
    assert answer.stats.by_transport == {"ws": 2, "callback": 1}
    assert sum(answer.stats.by_status.values()) == 3
    assert response.json()["stats"]["by_transport_detail"] == {
        "ws": 1,
        "stomp": 1,
        "amqp": 0,
        "polling": 1,
    }


def test_another_agent_type_counts_no_agent_and_is_echoed(mixed_fleet, client_as):
    # when
    response = post(client_as("staff"), GET_STATS, {"agent_type": "orchestrator"})

    # then
    answer = parse_stats_answer(response.json())
    assert (answer.agent_type, answer.tenant_id, answer.stats.total) == ("orchestrator", None, 0)
    assert answer.stats.by_transport == {"ws": 0, "callback": 0}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"agent_type": ""}, {"agent_type": ["This field may not be blank."]}),
        (
            {"agent_type": "x" * 101},
            {"agent_type": ["Ensure this field has no more than 100 characters."]},
        ),
        ({"agent_type": ["a"]}, {"agent_type": ["Not a valid string."]}),
    ],
)
def test_a_malformed_agent_type_is_a_400_with_field_errors(tenants, client_as, body, errors):
    response = post(client_as("staff"), GET_STATS, body)

    assert response.status_code == 400
    assert response.json() == errors


def test_the_svantic_client_rejects_an_answer_missing_a_documented_key(mixed_fleet, client_as):
    # given a real answer with one documented key taken out
    body = post(client_as("staff"), GET_STATS, {}).json()
    del body["stats"]["by_transport"]
    envelope = post(
        client_as("staff"), GET_CONNECTION, {"instance_id": str(mixed_fleet["ws"].uuid)}
    ).json()
    del envelope["connection"]["ws_last_seen"]

    # then the client refuses both
    with pytest.raises(SvanticShapeError, match="by_transport"):
        parse_stats_answer(body)
    with pytest.raises(SvanticShapeError, match="ws_last_seen"):
        parse_connection_answer(envelope)


@pytest.mark.parametrize("role", ["staff", "owner_a"])
def test_stats_take_a_fixed_number_of_queries_whatever_the_fleet(
    mixed_fleet, tenants, client_as, clock, role
):
    # given
    client = client_as(role)
    body = {"tenant_id": str(tenants.customer_a.uuid)}
    with CaptureQueriesContext(connection) as small:
        post(client, GET_STATS, body)
    for number in range(10):
        agent = AgentIdentityFactory(offering=tenants.agent_a.offering, name=f"more-{number}")
        open_connection(subscribe(agent), name=f"more-{number}", at=clock.ago(60))

    # when
    with CaptureQueriesContext(connection) as large:
        response = post(client, GET_STATS, body)

    # then
    assert response.json()["stats"]["total"] == 13
    assert len(small.captured_queries) == len(large.captured_queries) == STATS_QUERIES


def test_a_svantic_client_reads_both_endpoints_over_http(live_server, transactional_db, settings):
    # given an owner's agent connected over web-stomp, served by a real server
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    owner = UserFactory()
    agent = AgentIdentityFactory(
        offering=OfferingFactory(customer=CustomerFactory(owners=[owner])), created_by=owner
    )
    subscribe(agent)
    headers = {"Authorization": f"Token {Token.objects.get_or_create(user=owner)[0].key}"}

    # when
    envelope = requests.post(
        f"{live_server.url}{GET_CONNECTION}",
        json={"instance_id": str(agent.uuid)},
        headers=headers,
        timeout=60,
    )
    stats = requests.post(f"{live_server.url}{GET_STATS}", json={}, headers=headers, timeout=60)

    # then
    connection_ = parse_connection_answer(envelope.json())
    answer = parse_stats_answer(stats.json())
    assert (connection_.deployment_mode, connection_.transport) == ("connected", "ws")
    assert (answer.stats.total, answer.stats.by_transport) == (1, {"ws": 1, "callback": 0})
    assert answer.agent_type is None
    assert "agent_type" not in stats.json()
