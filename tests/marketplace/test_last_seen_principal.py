"""Only the agent's own calls refresh its last_seen; staff acting on it do not.

An agent staff registered for a provider, and that never called itself, must read as
never seen, not as active.
"""

import pytest
from rest_framework.test import APIClient

from marketplace.models import AgentConnectionState, AgentIdentity, Offering
from tests.factories import CustomerFactory, OfferingFactory, UserFactory

IDENTITIES = "/api/marketplace-site-agent-identities/"
GET_CONNECTION = "/api/agents/get_connection/"


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""


@pytest.fixture
def provider(db):
    owner = UserFactory()
    return owner, OfferingFactory(customer=CustomerFactory(owners=[owner]))


def register(client: APIClient, offering: Offering, name: str = "agent-1") -> AgentIdentity:
    response = client.post(
        IDENTITIES, {"offering": str(offering.uuid), "name": name}, format="json"
    )
    assert response.status_code == 201
    return AgentIdentity.objects.get(uuid=response.json()["uuid"])


def envelope_of(client: APIClient, identity: AgentIdentity) -> dict:
    response = client.post(GET_CONNECTION, {"instance_id": str(identity.uuid)}, format="json")
    assert response.status_code == 200
    return response.json()["connection"]


def test_identity_created_by_staff_is_never_seen(provider, staff_user, client_for):
    # given
    _, offering = provider
    staff = client_for(staff_user)

    # when staff registers an agent for the provider
    identity = register(staff, offering)

    # then the agent is never seen and not judged healthy
    envelope = envelope_of(staff, identity)
    assert envelope["last_seen"] is None
    assert (envelope["connection_status"], envelope["status_reason"]) == (
        "unknown",
        "never_seen",
    )


def test_staff_writes_to_an_identity_it_created_do_not_refresh_last_seen(
    provider, staff_user, client_for
):
    # given an agent staff registered
    _, offering = provider
    staff = client_for(staff_user)
    identity = register(staff, offering)

    # when staff registers a service for it and edits it
    service = staff.post(
        f"{IDENTITIES}{identity.uuid.hex}/register_service/", {"name": "orders"}, format="json"
    )
    edit = staff.patch(f"{IDENTITIES}{identity.uuid.hex}/", {"version": "2.0"}, format="json")

    # then the writes are done, and the agent is still never seen
    assert (service.status_code, edit.status_code) == (201, 200)
    assert envelope_of(staff, identity)["last_seen"] is None


def test_identity_created_by_the_providers_owner_is_seen(provider, client_for):
    # given
    owner, offering = provider

    # when the provider's owner (as the agent does) registers it
    identity = register(client_for(owner), offering)

    # then the agent is seen now
    state = AgentConnectionState.objects.get(identity=identity)
    assert state.last_seen is not None
    assert envelope_of(client_for(owner), identity)["status_reason"] == "active"
