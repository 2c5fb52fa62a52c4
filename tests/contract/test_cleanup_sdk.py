"""The staff clean-ups through the real `waldur-api-client` 8.1.3 against a live server:
the SDK sends its CleanupRequestRequest and parses our CleanupResponse for both, in a dry
run and for real; a support user's call is refused."""

from datetime import timedelta
from importlib import metadata

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_site_agent_identities import (
    marketplace_site_agent_identities_cleanup_orphaned,
)
from waldur_api_client.api.marketplace_site_agent_services import (
    marketplace_site_agent_services_cleanup_stale,
)
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import CleanupRequestRequest, CleanupResponse

from marketplace.models import AgentIdentity, AgentService
from marketplace.names import AgentServiceState
from tests.factories import AgentIdentityFactory, AgentServiceFactory, UserFactory

pytestmark = [pytest.mark.postgres]


def sdk_client(live_server, user) -> AuthenticatedClient:
    token = Token.objects.get_or_create(user=user)[0].key
    return AuthenticatedClient(base_url=live_server.url, token=token)


@pytest.fixture
def staff_sdk(transactional_db, real_postgres, live_server):
    # Closed afterwards: a kept-alive connection holds a live-server thread and its
    # database connection, which blocks dropping the test database.
    with sdk_client(live_server, UserFactory(is_staff=True)) as client:
        yield client


def test_sdk_parses_cleanup_stale_in_a_dry_run_and_for_real(staff_sdk):
    # given a service untouched for two days and one registered just now
    assert metadata.version("waldur-api-client") == "8.1.3"
    stale = AgentServiceFactory(name="stale", state=AgentServiceState.IDLE)
    AgentService.objects.filter(pk=stale.pk).update(modified=timezone.now() - timedelta(days=2))
    AgentServiceFactory(name="fresh")

    # when staff previews with the SDK's defaults, then deletes
    preview = marketplace_site_agent_services_cleanup_stale.sync(
        client=staff_sdk, body=CleanupRequestRequest()
    )
    done = marketplace_site_agent_services_cleanup_stale.sync(
        client=staff_sdk, body=CleanupRequestRequest(dry_run=False, older_than_hours=24)
    )

    # then the SDK parsed both answers, and only the stale service went
    assert isinstance(preview, CleanupResponse) and isinstance(done, CleanupResponse)
    assert (preview.deleted_count, preview.dry_run) == (1, True)
    [item] = preview.items
    assert (item.uuid, item.name, item.state) == (stale.uuid, "stale", "Idle")
    assert item.identity_name == stale.identity.name
    assert item.modified < timezone.now() - timedelta(days=1)
    assert (done.deleted_count, done.dry_run) == (1, False)
    assert list(AgentService.objects.values_list("name", flat=True)) == ["fresh"]


def test_sdk_parses_cleanup_orphaned_in_a_dry_run_and_for_real(staff_sdk):
    # given an identity without services and one with
    orphan = AgentIdentityFactory(name="orphan")
    AgentServiceFactory(identity=AgentIdentityFactory(name="busy"))

    # when staff previews, then deletes
    preview = marketplace_site_agent_identities_cleanup_orphaned.sync(
        client=staff_sdk, body=CleanupRequestRequest(dry_run=True)
    )
    done = marketplace_site_agent_identities_cleanup_orphaned.sync(
        client=staff_sdk, body=CleanupRequestRequest(dry_run=False)
    )

    # then both parse, and only the orphan went
    assert (preview.deleted_count, preview.dry_run) == (1, True)
    [item] = preview.items
    assert (item.uuid, item.name, item.offering_name) == (
        orphan.uuid,
        "orphan",
        orphan.offering.name,
    )
    assert item.created is not None
    assert (done.deleted_count, done.dry_run, len(done.items)) == (1, False, 1)
    assert list(AgentIdentity.objects.values_list("name", flat=True)) == ["busy"]


def test_a_support_users_sdk_call_is_refused(transactional_db, real_postgres, live_server):
    AgentIdentityFactory()
    support = UserFactory(is_support=True)

    with sdk_client(live_server, support) as client, pytest.raises(UnexpectedStatus) as refused:
        marketplace_site_agent_identities_cleanup_orphaned.sync(
            client=client, body=CleanupRequestRequest(dry_run=False)
        )

    assert refused.value.status_code == 403
    assert AgentIdentity.objects.count() == 1
