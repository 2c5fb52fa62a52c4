"""Staff clean-ups, as upstream: cleanup_stale deletes services not modified for
`older_than_hours` (any state), cleanup_orphaned deletes identities without services
(through delete_agent_identity, so their broker users go too). A dry run, the default,
deletes nothing. Support, owners and everyone else but staff get 403."""

from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.utils import timezone

from marketplace.models import AgentIdentity, AgentProcessor, AgentService
from marketplace.names import AgentServiceState
from tests.factories import (
    AgentIdentityFactory,
    AgentProcessorFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
)
from tests.kit.broker import accept_teardown, management_url

STALE = "/api/marketplace-site-agent-services/cleanup_stale/"
ORPHANED = "/api/marketplace-site-agent-identities/cleanup_orphaned/"


def service_modified_hours_ago(hours: float, **fields):
    service: Any = AgentServiceFactory(**fields)
    AgentService.objects.filter(pk=service.pk).update(
        modified=timezone.now() - timedelta(hours=hours)
    )
    return AgentService.objects.get(pk=service.pk)


@pytest.fixture
def staff_client(staff_user, client_for):
    return client_for(staff_user)


@pytest.mark.parametrize("path", [STALE, ORPHANED])
@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("outsider", 403), ("support", 403), ("owner", 403), ("staff", 200)],
)
def test_only_staff_may_clean_up(
    path, role, expected, api_client, client_for, user, support_user, owner, staff_user
):
    # given an orphaned identity and a stale service of the owner's
    AgentIdentityFactory(offering__customer__owners=[owner])
    service_modified_hours_ago(48, identity__offering__customer__owners=[owner])
    callers = {"outsider": user, "support": support_user, "owner": owner, "staff": staff_user}
    client = api_client if role == "anonymous" else client_for(callers[role])

    # when the caller asks for a real clean-up
    response = client.post(path, {"dry_run": False}, format="json")

    # then only staff gets through; for the others nothing is deleted
    assert response.status_code == expected, response.content
    if expected != 200:
        assert AgentIdentity.objects.count() == 2
        assert AgentService.objects.count() == 1


def test_a_dry_run_lists_the_stale_services_and_deletes_nothing(staff_client):
    # given services modified 30 h, 25 h and 2 h ago, in every state
    old = service_modified_hours_ago(30, state=AgentServiceState.ERROR, name="old")
    older = service_modified_hours_ago(25, state=AgentServiceState.IDLE, name="older")
    service_modified_hours_ago(2, state=AgentServiceState.ACTIVE, name="recent")

    # when staff asks with the defaults (a dry run, 24 hours)
    response = staff_client.post(STALE, {}, format="json")

    # then the two stale ones are listed in upstream's shape, and all three remain
    assert response.status_code == 200
    body = response.json()
    assert (body["deleted_count"], body["dry_run"]) == (2, True)
    assert [item["name"] for item in body["items"]] == ["old", "older"]
    assert set(body["items"][0]) == {"uuid", "name", "identity__name", "state", "modified"}
    assert body["items"][0]["uuid"] == str(old.uuid)
    assert body["items"][0]["identity__name"] == old.identity.name
    assert body["items"][1]["state"] == older.state == "Idle"
    assert AgentService.objects.count() == 3


def test_cleanup_stale_deletes_the_stale_services_with_their_processors(staff_client):
    # given a service untouched for 3 hours (with a processor) and one touched just now
    stale = service_modified_hours_ago(3)
    AgentProcessorFactory(service=stale)
    fresh = service_modified_hours_ago(0)

    # when staff deletes what is older than 2 hours
    response = staff_client.post(STALE, {"dry_run": False, "older_than_hours": 2}, format="json")

    # then the stale one and its processor are gone, the fresh one stays
    assert response.status_code == 200
    assert (response.json()["deleted_count"], response.json()["dry_run"]) == (1, False)
    assert list(AgentService.objects.all()) == [fresh]
    assert not AgentProcessor.objects.exists()


def test_cleanup_orphaned_lists_identities_without_services_in_a_dry_run(staff_client):
    # given an identity with a service and one without
    lonely = AgentIdentityFactory(name="lonely")
    AgentServiceFactory(identity=AgentIdentityFactory(name="busy"))

    # when staff asks for a dry run
    response = staff_client.post(ORPHANED, {"dry_run": True}, format="json")

    # then only the one without services is listed, in upstream's shape, and kept
    body = response.json()
    assert (response.status_code, body["deleted_count"], body["dry_run"]) == (200, 1, True)
    [item] = body["items"]
    assert item == {
        "uuid": str(lonely.uuid),
        "name": "lonely",
        "offering__name": lonely.offering.name,
        "created": item["created"],
    }
    assert AgentIdentity.objects.count() == 2


def test_cleanup_orphaned_deletes_them_and_their_broker_users(staff_client, broker):
    # given an orphaned identity with a legacy subscription (a broker user), and a busy one
    subscription = EventSubscriptionFactory(agent_identity=AgentIdentityFactory())
    busy = AgentServiceFactory().identity
    accept_teardown(broker)

    # when staff deletes the orphans
    response = staff_client.post(ORPHANED, {"dry_run": False}, format="json")

    # then the orphan and its broker user are gone; the busy identity stays
    assert response.status_code == 200
    assert response.json()["deleted_count"] == 1
    assert list(AgentIdentity.objects.all()) == [busy]
    deleted = [call.request.url for call in broker.calls if call.request.method == "DELETE"]
    assert deleted[0].endswith(f"/api/users/{subscription.uuid.hex}")


def test_a_broker_failure_keeps_the_orphans_and_answers_503(staff_client, broker):
    # given two orphaned identities with broker users, and a broker that refuses
    for _ in range(2):
        EventSubscriptionFactory(agent_identity=AgentIdentityFactory())
    broker.add(responses.DELETE, management_url("users"), body=requests.ConnectionError("refused"))

    # when staff deletes the orphans
    response = staff_client.post(ORPHANED, {"dry_run": False}, format="json")

    # then nothing is deleted and the answer says why
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert "0 of 2" in response.json()["detail"]
    assert AgentIdentity.objects.count() == 2


@pytest.mark.parametrize("path", [STALE, ORPHANED])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"older_than_hours": 0}, "older_than_hours"),
        ({"older_than_hours": -5}, "older_than_hours"),
        ({"older_than_hours": "soon"}, "older_than_hours"),
        ({"older_than_hours": 1.5}, "older_than_hours"),
        ({"older_than_hours": 10**9}, "older_than_hours"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"dry_run": None}, "dry_run"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(staff_client, path, body, field):
    # given an orphaned identity and a stale service
    AgentIdentityFactory()
    service_modified_hours_ago(48)
    counts = (AgentIdentity.objects.count(), AgentService.objects.count())

    # when staff asks for a real clean-up with a bad value
    response = staff_client.post(path, {"dry_run": False, **body}, format="json")

    # then it is refused, naming the field, and nothing is deleted
    assert response.status_code == 400
    assert field in response.json()
    assert (AgentIdentity.objects.count(), AgentService.objects.count()) == counts
