"""The admin's observer status page says which observer process is active, read-only."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from marketplace.envelope.services import acquire_observer_lease
from marketplace.models import ObserverStatus
from tests.factories import UserFactory

PAGE = "/admin/marketplace/observerstatus/"


def admin_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_page_names_the_holder_of_a_live_lease_and_allows_no_edit(db):
    # given an observer holds the lease
    assert acquire_observer_lease("vm-3:4242:0a1b2c3d")
    client = admin_client()

    # when staff open the list and the row
    listing = client.get(PAGE)
    row = ObserverStatus.objects.get(name="default")
    detail = client.get(f"{PAGE}{row.pk}/change/")

    # then both show the holder and that its lease is held; nothing can be changed
    assert listing.status_code == 200 and detail.status_code == 200
    for page in (listing, detail):
        assert "vm-3:4242:0a1b2c3d" in page.content.decode()
        assert ">held<" in page.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(f"{PAGE}add/").status_code == 403
    assert client.post(f"{PAGE}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ObserverStatus.objects.get(pk=row.pk).lease_holder == "vm-3:4242:0a1b2c3d"


def test_the_page_says_when_the_lease_expired_or_is_free(db):
    # given the holder stopped beating long ago
    assert acquire_observer_lease("vm-3:4242:0a1b2c3d")
    ObserverStatus.objects.update(lease_expires_at=timezone.now() - timedelta(hours=1))
    client = admin_client()
    assert "expired (a standby takes it at its next poll)" in client.get(PAGE).content.decode()

    # when nobody holds it
    ObserverStatus.objects.update(lease_holder="", lease_expires_at=None)

    # then
    assert "free (no observer active)" in client.get(PAGE).content.decode()
