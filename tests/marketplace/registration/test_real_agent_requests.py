"""What the real agent sends is accepted: its registration body, identities by hex or
dashed uuid, and no response ever carries the user's API token."""

from datetime import UTC, datetime

import pytest
from rest_framework.authtoken.models import Token

from marketplace.models import AgentIdentity
from tests.kit.api import IDENTITIES, SUBSCRIPTIONS
from tests.kit.broker import accept_provisioning


def test_the_real_agents_registration_body_is_accepted(offering, owner_client):
    # given the body waldur-site-agent 1.0.0 sends
    body = {
        "offering": offering.uuid.hex,
        "name": "hpc-site-agent",
        "version": "1.0.0",
        "dependencies": [
            {
                "package": "waldur-site-agent-slurm",
                "version": "1.0.0",
                "entry_point": "waldur_site_agent_slurm.backend:SlurmBackend",
            }
        ],
        "config_file_path": "",
        "config_file_content": "",
        "last_restarted": "2026-11-26T00:34:36.841690",
    }

    # when
    response = owner_client.post(IDENTITIES, body, format="json")

    # then the naive time is taken as UTC and the extra key is dropped
    assert response.status_code == 201
    data = response.json()
    assert data["last_restarted"] == "2026-11-26T00:34:36.841690Z"
    assert data["dependencies"] == [{"package": "waldur-site-agent-slurm", "version": "1.0.0"}]
    assert (data["config_file_path"], data["config_file_content"]) == ("", "")
    identity = AgentIdentity.objects.get()
    assert identity.last_restarted == datetime(2026, 11, 26, 0, 34, 36, 841690, tzinfo=UTC)
    assert identity.dependencies == [{"package": "waldur-site-agent-slurm", "version": "1.0.0"}]


@pytest.mark.parametrize("form", ["hex", "dashed"])
def test_identity_is_addressed_by_hex_or_dashed_uuid(form, identity, owner_client):
    # given
    key = identity.uuid.hex if form == "hex" else str(identity.uuid)

    # when
    response = owner_client.get(f"{IDENTITIES}{key}/")

    # then
    assert response.status_code == 200
    assert response.json()["uuid"] == str(identity.uuid)


def test_unknown_identity_uuid_is_not_found(identity, owner_client):
    # when
    response = owner_client.get(f"{IDENTITIES}{'f' * 32}/")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "detail": "No AgentIdentity matches the given query.",
        "code": "not_found",
    }


def test_responses_never_contain_the_users_api_token(offering, owner, owner_client, broker):
    # given
    accept_provisioning(broker)
    token = Token.objects.get(user=owner).key

    # when the agent runs its whole registration flow
    identity = owner_client.post(
        IDENTITIES, {"offering": offering.uuid.hex, "name": "agent-a"}, format="json"
    )
    identity_url = f"{IDENTITIES}{identity.json()['uuid']}/"
    subscription = owner_client.post(
        f"{identity_url}register_event_subscription/",
        {"observable_object_type": "order"},
        format="json",
    )
    subscription_url = f"{SUBSCRIPTIONS}{subscription.json()['uuid']}/"
    queue = owner_client.post(
        f"{subscription_url}create_queue/",
        {"offering_uuid": offering.uuid.hex, "object_type": "order"},
        format="json",
    )
    reads = [
        owner_client.get(identity_url),
        owner_client.get(subscription_url),
        owner_client.get(SUBSCRIPTIONS),
        owner_client.get(f"/api/users/{owner.uuid.hex}/"),
    ]

    # then the token went to the broker as the subscription user's password, never back
    responses_seen = [identity, subscription, queue, *reads]
    assert [r.status_code for r in responses_seen] == [201, 201, 201, 200, 200, 200, 200]
    assert all(token not in r.content.decode() for r in responses_seen)
    user_puts = [call for call in broker.calls if "/api/users/" in call.request.url]
    assert token.encode() in user_puts[0].request.body
