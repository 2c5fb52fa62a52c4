"""The domain's enums are what the API emits and accepts, spelled in one place."""

import pytest
from django.conf import settings

from marketplace.envelope.status import ROUTING_STATUS
from marketplace.names import (
    REPORTED_SERVICE_STATES,
    AgentServiceState,
    AgentTransport,
    ConnectionStatus,
    DeploymentMode,
    EnvelopeTransport,
    ObservableObjectType,
    RoutingStatus,
)
from tests.factories import AgentServiceFactory
from tests.kit.broker import mock_broker_snapshot

STATS_URL = "/api/marketplace-site-agent-connection-stats/"
ENVELOPE_TOTALS_URL = "/api/agents/get_connection_stats/"
MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")


def test_the_stats_api_spells_service_states_upper_case():
    assert REPORTED_SERVICE_STATES == ("ACTIVE", "IDLE", "ERROR")
    assert [state.reported for state in AgentServiceState] == list(REPORTED_SERVICE_STATES)


@pytest.mark.parametrize("given", ["error", "ERROR", "Error", "eRrOr"])
def test_a_service_state_is_parsed_in_any_letter_case(given):
    assert AgentServiceState.parse(given) is AgentServiceState.ERROR


def test_an_unknown_service_state_is_not_parsed():
    assert AgentServiceState.parse("RUNNING") is None


def test_labels_are_the_values_in_words_unless_given():
    assert ObservableObjectType.USER_ROLE.label == "User role"
    assert AgentServiceState.IDLE.label == "Idle"
    assert AgentTransport.WEB_STOMP.label == "STOMP over WebSocket"
    assert AgentTransport.choices()[-1] == ("polling", "Polling the API")


@pytest.mark.parametrize(
    ("protocol", "transport"),
    [
        ("Web STOMP 1.2", AgentTransport.WEB_STOMP),
        ("STOMP 1.2", AgentTransport.STOMP),
        ("AMQP 0-9-1", AgentTransport.AMQP),
        ("MQTT 3.1", None),
        ("", None),
        (None, None),
    ],
)
def test_a_broker_protocol_maps_to_its_transport(protocol, transport):
    assert AgentTransport.of_protocol(protocol) == transport


def test_every_connection_status_has_a_routing_status():
    assert set(ROUTING_STATUS) == set(ConnectionStatus)
    assert RoutingStatus.BUSY not in ROUTING_STATUS.values()


def test_the_stats_api_emits_exactly_the_reported_service_states(
    identity, staff_user, client_for, broker
):
    # Given an agent with a service in every state
    for state in AgentServiceState:
        AgentServiceFactory(identity=identity, name=f"svc-{state.value}", state=state)
    mock_broker_snapshot(broker, base=MANAGEMENT)

    # When staff read the stats
    response = client_for(staff_user).get(STATS_URL)

    # Then the services carry the enum's reported spellings, each once
    assert response.status_code == 200
    states = [service["state"] for service in response.json()["agents"][0]["services"]]
    assert sorted(states) == sorted(REPORTED_SERVICE_STATES)


@pytest.mark.parametrize("state", list(AgentServiceState))
def test_the_stats_filter_accepts_each_state_as_the_api_spells_it(
    state, identity, staff_user, client_for, broker
):
    AgentServiceFactory(identity=identity, state=state)
    mock_broker_snapshot(broker, base=MANAGEMENT)

    response = client_for(staff_user).get(STATS_URL, {"service_state": state.reported})

    assert response.status_code == 200
    assert response.json()["summary"]["total_agents"] == 1


def test_the_envelope_totals_have_a_key_for_every_member_in_enum_order(
    identity, staff_user, client_for
):
    # When staff ask for the totals of every agent
    response = client_for(staff_user).post(ENVELOPE_TOTALS_URL, {}, format="json")

    # Then each total lists every member of its enum, in declaration order
    assert response.status_code == 200
    stats = response.json()["stats"]
    assert list(stats["by_deployment_mode"]) == DeploymentMode.values()
    assert list(stats["by_status"]) == ConnectionStatus.values()
    assert list(stats["by_transport"]) == EnvelopeTransport.values()
    assert list(stats["by_transport_detail"]) == AgentTransport.values()
    assert stats["by_deployment_mode"][DeploymentMode.HOSTED] == 1
    assert stats["by_transport"][EnvelopeTransport.CALLBACK] == 1
    assert stats["by_transport_detail"][AgentTransport.POLLING] == 1
