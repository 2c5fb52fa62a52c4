"""Who may register an agent's queue, and what the consumer records about how they got in."""

import pytest
from rest_framework.test import APIClient

from marketplace.models import EventConsumer
from tests.factories import AgentIdentityFactory, UserFactory
from tests.marketplace.consumers.management import accept_provisioning, register_queue_url


@pytest.fixture
def creator(offering):
    """A user who registered an agent of a customer it does not own."""
    user = UserFactory()
    return user, AgentIdentityFactory(offering=offering, created_by=user)


@pytest.mark.parametrize(
    ("caller", "expected_status"),
    [
        pytest.param("anonymous", 401, id="anonymous"),
        pytest.param("stranger", 403, id="stranger"),
        pytest.param("support", 403, id="support-reads-only"),
        pytest.param("staff", 400, id="staff-never-puts-its-token-in-the-broker"),
        pytest.param("customer_owner", 201, id="customer-owner"),
        pytest.param("creator", 403, id="identity-creator-not-an-owner"),
    ],
)
def test_register_queue_permission_matrix(
    caller, expected_status, creator, owner, staff_user, support_user, user, client_for, broker
):
    # given an agent registered by a user who does not own its customer
    creator_user, identity = creator
    accept_provisioning(broker)
    users = {
        "stranger": user,
        "support": support_user,
        "staff": staff_user,
        "customer_owner": owner,
        "creator": creator_user,
    }
    client = APIClient() if caller == "anonymous" else client_for(users[caller])

    # when
    response = client.post(register_queue_url(identity), {}, format="json")

    # then
    assert response.status_code == expected_status
    assert EventConsumer.objects.count() == (1 if expected_status == 201 else 0)
    if expected_status != 201:
        assert set(response.json()) == {"detail", "code"}
        assert len(broker.calls) == 0


@pytest.mark.parametrize(
    ("caller", "expected_right"),
    [
        pytest.param("staff_owner", "staff", id="staff-before-customer-owner"),
        pytest.param("customer_owner", "customer_owner", id="customer-owner"),
        pytest.param("owner_creator", "customer_owner", id="customer-owner-who-created-it"),
    ],
)
def test_register_queue_records_the_first_right_that_lets_the_caller_in(
    caller, expected_right, creator, customer, owner, staff_user, client_for, broker
):
    # given
    _, identity = creator
    accept_provisioning(broker)
    if caller == "staff_owner":
        customer.owners.add(staff_user)
    if caller == "owner_creator":
        identity = AgentIdentityFactory(offering=identity.offering, created_by=owner)
    caller_user = {
        "staff_owner": staff_user,
        "customer_owner": owner,
        "owner_creator": owner,
    }[caller]

    # when
    response = client_for(caller_user).post(register_queue_url(identity), {}, format="json")

    # then
    assert response.status_code == 201
    consumer = EventConsumer.objects.get()
    assert consumer.user == caller_user
    assert consumer.authorized_via == expected_right


def test_register_queue_by_token_records_token_auth_without_personal_token_details(
    identity, owner_client, broker
):
    # given
    accept_provisioning(broker)

    # when
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then
    assert response.status_code == 201
    consumer = EventConsumer.objects.get()
    assert (consumer.auth_kind, consumer.auth_token_prefix, consumer.auth_token_name) == (
        "token",
        "",
        "",
    )


def test_register_queue_by_session_records_session_auth_and_the_caller_token_is_the_password(
    identity, owner, broker
):
    # given a signed-in owner without an API token yet
    accept_provisioning(broker)
    owner.auth_token.delete()
    client = APIClient()
    client.force_login(owner)

    # when
    response = client.post(register_queue_url(identity), {}, format="json")

    # then the session is recorded, and the owner got a token that is the broker password
    assert response.status_code == 201
    assert EventConsumer.objects.get().auth_kind == "session"
    owner.refresh_from_db()
    passwords = [call.request.body for call in broker.calls if "/api/users/" in call.request.url]
    assert len(passwords) == 1
    assert owner.auth_token.key in passwords[0].decode()


def test_register_queue_by_another_authenticator_records_unknown_auth(identity, owner, broker):
    # given a client authenticated by neither a token nor a session
    accept_provisioning(broker)
    client = APIClient()
    client.force_authenticate(owner)

    # when
    response = client.post(register_queue_url(identity), {}, format="json")

    # then
    assert response.status_code == 201
    assert EventConsumer.objects.get().auth_kind == "unknown"


def test_every_register_queue_records_how_that_caller_got_in(identity, owner, owner_client, broker):
    # given a consumer first registered in a browser session
    accept_provisioning(broker)
    session_client = APIClient()
    session_client.force_login(owner)
    assert session_client.post(register_queue_url(identity), {}, format="json").status_code == 201
    assert EventConsumer.objects.get().auth_kind == "session"

    # when the agent registers it again with its token
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then the latest call's authentication is recorded
    assert response.status_code == 200
    consumer = EventConsumer.objects.get()
    assert (consumer.auth_kind, consumer.authorized_via) == ("token", "customer_owner")
