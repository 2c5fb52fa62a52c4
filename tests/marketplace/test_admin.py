"""Admin pages render for staff and never show an API token."""

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from marketplace.models import AgentConnectionEvent
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
    UserFactory,
)


@pytest.fixture
def admin_client_with_fleet(db):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    identity = AgentIdentityFactory(config_file_content="token: not-a-real-secret")
    AgentServiceFactory(identity=identity)
    subscription = EventSubscriptionFactory(agent_identity=identity)
    client = Client()
    client.force_login(admin_user)
    return client, identity, subscription


@pytest.mark.parametrize(
    "path",
    [
        "/admin/marketplace/agentidentity/",
        "/admin/marketplace/agentservice/",
        "/admin/marketplace/eventsubscription/",
        "/admin/marketplace/customer/",
        "/admin/marketplace/offering/",
        "/admin/agentstats/user/",
    ],
)
def test_admin_lists_render_without_any_token_key(admin_client_with_fleet, path):
    client, _, _ = admin_client_with_fleet

    response = client.get(path)

    assert response.status_code == 200
    page = response.content.decode()
    for key in Token.objects.values_list("key", flat=True):
        assert key not in page


def test_admin_identity_page_shows_services_and_subscriptions_inline(admin_client_with_fleet):
    client, identity, subscription = admin_client_with_fleet

    response = client.get(f"/admin/marketplace/agentidentity/{identity.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert identity.services.get().name in page
    assert str(subscription.uuid) in page
    for key in Token.objects.values_list("key", flat=True):
        assert key not in page


def test_admin_has_no_token_pages(admin_client_with_fleet):
    client, _, _ = admin_client_with_fleet

    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_admin_timeline_of_one_agent_lists_only_its_events(admin_client_with_fleet):
    client, identity, _ = admin_client_with_fleet
    other = AgentIdentityFactory()
    for agent, name in ((identity, "mine"), (other, "theirs")):
        AgentConnectionEvent.objects.create(
            identity=agent,
            kind="connected",
            occurred_at=timezone.now(),
            connection_name=f"{name}-connection",
            reason="opened",
        )

    response = client.get(
        f"/admin/marketplace/agentconnectionevent/?identity__uuid={identity.uuid}"
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "mine-connection" in page
    assert "theirs-connection" not in page
