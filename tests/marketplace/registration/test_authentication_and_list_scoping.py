"""Unknown and inactive tokens are refused; an owner's lists show only its customers' agents."""

from rest_framework.test import APIClient

from agentstats.models import User
from tests.kit.api import IDENTITIES
from tests.kit.permission_matrix import identity_path


def test_request_with_an_unknown_token_is_unauthorized(world):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}
    assert response["WWW-Authenticate"] == "Token"


def test_inactive_users_token_is_unauthorized(world, client_for):
    # given an owner whose account was deactivated
    client = client_for(world.owner)
    User.objects.filter(pk=world.owner.pk).update(is_active=False)

    # when
    response = client.get(identity_path(world))

    # then
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_owner_lists_only_agents_of_its_customers(world, client_for):
    # given an owner whose customer has one agent, and another customer's agent
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 200
    assert [item["uuid"] for item in response.json()] == [str(world.mine.identity.uuid)]


def test_owner_of_two_customers_lists_the_agents_of_both(world, client_for):
    # given the owner also owns the foreign agent's customer
    world.foreign.identity.offering.customer.owners.add(world.owner)
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 200
    assert {item["uuid"] for item in response.json()} == {
        str(world.mine.identity.uuid),
        str(world.foreign.identity.uuid),
    }


def test_name_filter_does_not_reveal_other_customers_agents(world, client_for):
    # given an owner who knows another customer's agent name
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES, {"name": world.foreign.identity.name})

    # then
    assert response.status_code == 200
    assert response.json() == []
