"""Shipping logs is one of the agent's own calls: it counts as the agent being seen."""

from marketplace.models import AgentConnectionState
from tests.factories import UserFactory
from tests.marketplace.agent_logs.builders import LOGS, shipped_entry


def last_seen_of(identity):
    state = AgentConnectionState.objects.filter(identity=identity).first()
    return state.last_seen if state else None


def test_logs_shipped_by_the_agents_own_principal_refresh_its_last_seen(
    client_for, identity, owner
):
    # given an agent that was never seen
    assert last_seen_of(identity) is None

    # when its owner's token ships a batch
    response = client_for(owner).post(LOGS, [shipped_entry(identity)], format="json")

    # then the agent counts as seen
    assert response.status_code == 201
    assert last_seen_of(identity) is not None


def test_logs_shipped_by_staff_for_an_agent_do_not_refresh_its_last_seen(client_for, identity):
    # given staff, who manage every agent but are not this one
    staff = UserFactory(is_staff=True)

    # when staff ship a batch for it
    response = client_for(staff).post(LOGS, [shipped_entry(identity)], format="json")

    # then the lines are stored, and the agent is still never seen
    assert response.status_code == 201
    assert last_seen_of(identity) is None
