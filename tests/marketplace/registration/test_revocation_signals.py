"""The immediate path of revocation: a token, user or ownership change revokes the broker
credentials derived from it as soon as it commits; a broker failure there is logged
without secrets and left to the sweep."""

import logging
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import responses

from marketplace.models import BrokerUserRemoval, EventConsumer, EventSubscription
from marketplace.registration.broker_credentials import digest_token_key
from marketplace.registration.revocation import run_revoke_broker_credentials
from tests.factories import UserFactory
from tests.kit.broker import management_url
from tests.kit.revocation import (
    deactivate,
    provisioned_consumer,
    provisioned_subscription,
    rotate_token,
    token_key,
)
from tests.marketplace.consumers.management import accept_provisioning


def paths(broker) -> list[tuple[str, str]]:
    return [
        (call.request.method, unquote(call.request.path_url.split("?")[0])) for call in broker.calls
    ]


def test_rotating_a_token_moves_the_broker_password_at_commit(
    identity, owner, provisioning_broker, django_capture_on_commit_callbacks
):
    # given
    consumer = provisioned_consumer(identity, owner)

    # when the token is rotated (delete, create) in one transaction
    with django_capture_on_commit_callbacks(execute=True):
        new_key = rotate_token(owner)

    # then the broker user was deleted (closing its connections) and made with the new token
    assert paths(provisioning_broker)[0] == ("DELETE", f"/api/users/{consumer.rmq_username}")
    assert ("PUT", f"/api/users/{consumer.rmq_username}") in paths(provisioning_broker)
    consumer.refresh_from_db()
    assert consumer.broker_credential_digest == digest_token_key(new_key)


@pytest.mark.parametrize(
    "change",
    ["deactivate", "remove_owner", "remove_owned_customer", "clear_owners", "clear_customers"],
)
def test_losing_the_right_deletes_the_rows_and_broker_users_at_commit(
    identity, owner, customer, provisioning_broker, django_capture_on_commit_callbacks, change
):
    # given a subscription and a consumer of the owner
    subscription = provisioned_subscription(identity, owner)
    provisioned_consumer(identity, owner)

    # when its right ends, from either side of the ownership
    with django_capture_on_commit_callbacks(execute=True):
        {
            "deactivate": lambda: deactivate(owner),
            "remove_owner": lambda: customer.owners.remove(owner),
            "remove_owned_customer": lambda: owner.owned_customers.remove(customer),
            "clear_owners": lambda: customer.owners.clear(),
            "clear_customers": lambda: owner.owned_customers.clear(),
        }[change]()

    # then
    assert not EventSubscription.objects.exists()
    assert not EventConsumer.objects.exists()
    assert ("DELETE", f"/api/users/{subscription.uuid.hex}") in paths(provisioning_broker)


def test_removing_one_owner_leaves_the_other_owners_credentials(
    identity, owner, customer, provisioning_broker, django_capture_on_commit_callbacks
):
    # given two owners, each with a subscription
    other = UserFactory()
    customer.owners.add(other)
    kept = provisioned_subscription(identity, other)
    provisioned_subscription(identity, owner, observable_objects=[{"object_type": "resource"}])

    # when one owner is removed
    with django_capture_on_commit_callbacks(execute=True):
        customer.owners.remove(owner)

    # then only its subscription goes
    assert list(EventSubscription.objects.all()) == [kept]


def test_deleting_a_user_removes_its_broker_users_at_commit(
    identity, owner, provisioning_broker, django_capture_on_commit_callbacks
):
    # given
    subscription = provisioned_subscription(identity, owner)
    consumer = provisioned_consumer(identity, owner)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        owner.delete()

    # then its broker users are gone, and nothing is left pending
    assert {
        ("DELETE", f"/api/users/{subscription.uuid.hex}"),
        ("DELETE", f"/api/users/{consumer.rmq_username}"),
    } <= set(paths(provisioning_broker))
    assert not BrokerUserRemoval.objects.exists()


def test_a_broker_down_at_commit_is_logged_without_secrets_and_the_sweep_revokes(
    identity, owner, broker, django_capture_on_commit_callbacks, caplog
):
    # given a consumer, and a broker that is down
    consumer = provisioned_consumer(identity, owner)
    old_key = token_key(owner)
    broker.add(responses.DELETE, management_url("users"), status=503)
    caplog.set_level(logging.DEBUG)

    # when the token is rotated
    with django_capture_on_commit_callbacks(execute=True):
        new_key = rotate_token(owner)

    # then the change is committed, the failure logged without any token, the row unchanged
    consumer.refresh_from_db()
    assert consumer.broker_credential_digest == digest_token_key(old_key)
    assert "unavailable" in caplog.text
    assert old_key not in caplog.text
    assert new_key not in caplog.text

    # when the broker is back and the sweep runs
    broker.replace(responses.DELETE, management_url("users"), status=204)
    accept_provisioning(broker)
    counts = run_revoke_broker_credentials(now=datetime.now(tz=UTC))

    # then the sweep revokes the old token
    assert counts["rotated"] == 1
    consumer.refresh_from_db()
    assert consumer.broker_credential_digest == digest_token_key(new_key)


def test_an_ordinary_save_of_an_active_user_asks_the_broker_nothing(
    identity, owner, broker, django_capture_on_commit_callbacks
):
    # given
    provisioned_consumer(identity, owner)

    # when the user logs in (a save of last_login) or is renamed
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        owner.first_name = "Grace"
        owner.save()

    # then nothing is scheduled and the broker is not asked
    assert callbacks == []
    assert len(broker.calls) == 0
