"""The revocation sweep's rules with the broker faked: who loses the broker credential, how
(row deleted, broker user re-made with the new token, broker user removed), and that a
broker failure leaves the work to the next run."""

from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from marketplace.models import BrokerUserRemoval, EventConsumer, EventSubscription
from marketplace.registration.broker_credentials import REVOKED_DIGEST, digest_token_key
from marketplace.registration.revocation import run_revoke_broker_credentials
from marketplace.registration.revocation_signals import (
    connect_revocation_signals,
    disconnect_revocation_signals,
)
from tests.factories import AgentIdentityFactory
from tests.kit.broker import MANAGEMENT, answer_vhost_lookups, management_url
from tests.kit.revocation import (
    deactivate,
    provisioned_consumer,
    provisioned_subscription,
    rotate_token,
)

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _sweep_alone():
    """Only the sweep acts here (the signals' immediate path has its own tests)."""
    disconnect_revocation_signals()
    yield
    connect_revocation_signals()


def calls(broker) -> list[tuple[str, str]]:
    return [
        (call.request.method, unquote(call.request.path_url.split("?")[0])) for call in broker.calls
    ]


def sweep() -> dict[str, int]:
    return run_revoke_broker_credentials(now=NOW)


def test_a_current_owner_with_its_provisioned_token_keeps_everything(identity, owner, broker):
    # given
    provisioned_subscription(identity, owner)
    provisioned_consumer(identity, owner)

    # when
    counts = sweep()

    # then the broker is not even asked
    assert set(counts.values()) == {0}
    assert len(broker.calls) == 0


@pytest.mark.parametrize("change", ["removed_owner", "deactivated", "cleared_owners"])
def test_an_owner_who_lost_its_right_loses_its_rows_and_broker_users(
    identity, owner, customer, provisioning_broker, change
):
    # given a subscription and a consumer of the owner
    subscription = provisioned_subscription(identity, owner)
    consumer = provisioned_consumer(identity, owner)
    if change == "removed_owner":
        customer.owners.remove(owner)
    elif change == "cleared_owners":
        customer.owners.clear()
    else:
        deactivate(owner)

    # when
    counts = sweep()

    # then both rows are deleted through their services: broker users and queue go too
    assert counts["deleted"] == 2
    assert not EventSubscription.objects.exists()
    assert not EventConsumer.objects.exists()
    # (and the owner's vhost, which nothing uses any more)
    assert calls(provisioning_broker) == [
        ("DELETE", f"/api/users/{subscription.uuid.hex}"),
        ("DELETE", f"/api/users/{consumer.rmq_username}"),
        ("DELETE", f"/api/queues/{owner.uuid.hex}/{consumer.queue_name}"),
        ("GET", "/api/vhosts"),
        ("DELETE", f"/api/vhosts/{owner.uuid.hex}"),
    ]


def test_a_staff_owned_row_on_a_tenants_agent_is_deleted(identity, staff_user, provisioning_broker):
    # given a consumer staff registered before staff were refused
    provisioned_consumer(identity, staff_user)

    # when
    counts = sweep()

    # then staff's token is no broker password any more
    assert counts["deleted"] == 1
    assert not EventConsumer.objects.exists()


def test_a_rotated_token_re_makes_the_broker_user_with_it_closing_its_connections(
    identity, owner, provisioning_broker
):
    # given a consumer, and the owner's token rotated
    consumer = provisioned_consumer(identity, owner)
    new_key = rotate_token(owner)

    # when
    counts = sweep()

    # then the user is deleted (the broker closes all its connections) and provisioned
    # again with the new token; the digest moves
    assert counts["rotated"] == 1
    made = calls(provisioning_broker)
    assert made[0] == ("DELETE", f"/api/users/{consumer.rmq_username}")
    assert ("PUT", f"/api/users/{consumer.rmq_username}") in made
    assert ("PUT", f"/api/permissions/{owner.uuid.hex}/{consumer.rmq_username}") in made
    password_put = next(
        call
        for call in provisioning_broker.calls
        if call.request.url.endswith(consumer.rmq_username) and call.request.method == "PUT"
    )
    assert new_key in password_put.request.body.decode()
    consumer.refresh_from_db()
    assert consumer.broker_credential_digest == digest_token_key(new_key)

    # when it runs again, then nothing is left to do
    asked = len(provisioning_broker.calls)
    assert set(sweep().values()) == {0}
    assert len(provisioning_broker.calls) == asked


def test_a_rotated_token_re_makes_a_subscriptions_user_in_its_owners_vhost(
    identity, owner, provisioning_broker
):
    subscription = provisioned_subscription(identity, owner)
    rotate_token(owner)

    assert sweep()["rotated"] == 1
    assert calls(provisioning_broker)[0] == ("DELETE", f"/api/users/{subscription.uuid.hex}")
    assert ("PUT", f"/api/permissions/{owner.uuid.hex}/{subscription.uuid.hex}") in calls(
        provisioning_broker
    )


def test_a_deleted_token_with_none_new_removes_the_broker_user_once(
    identity, owner, provisioning_broker
):
    # given
    subscription = provisioned_subscription(identity, owner)
    Token.objects.filter(user=owner).delete()

    # when
    counts = sweep()

    # then the broker user is gone (its connections with it) and the row is marked
    assert counts["revoked"] == 1
    assert calls(provisioning_broker) == [("DELETE", f"/api/users/{subscription.uuid.hex}")]
    subscription.refresh_from_db()
    assert subscription.broker_credential_digest == REVOKED_DIGEST

    # when a new token appears and the sweep runs again, then it waits for re-registration
    Token.objects.create(user=owner)
    assert set(sweep().values()) == {0}
    assert len(provisioning_broker.calls) == 1


def test_a_row_provisioned_before_digests_is_converged_once(identity, owner, provisioning_broker):
    # given a consumer without a digest (made before they were stored)
    consumer = provisioned_consumer(identity, owner)
    EventConsumer.objects.filter(pk=consumer.pk).update(broker_credential_digest="")

    # when
    counts = sweep()

    # then its password is set to the owner's token, once
    assert counts["rotated"] == 1
    assert set(sweep().values()) == {0}


def test_an_unavailable_broker_stops_the_run_and_the_next_run_finishes(identity, owner, broker):
    # given two subscriptions of an owner who lost its right, and a broker that is down
    first = provisioned_subscription(identity, owner)
    provisioned_subscription(identity, owner, observable_objects=[{"object_type": "resource"}])
    identity.offering.customer.owners.remove(owner)
    broker.add(responses.DELETE, management_url("users"), status=503)

    # when
    counts = sweep()

    # then one failure stops the run, and nothing is deleted
    assert (counts["failed"], counts["deleted"]) == (1, 0)
    assert len(broker.calls) == 1
    assert EventSubscription.objects.count() == 2

    # when the broker is back
    broker.replace(responses.DELETE, management_url("users"), status=204)
    broker.add(responses.DELETE, management_url("vhosts"), status=204)
    answer_vhost_lookups(broker)
    counts = sweep()

    # then the next run revokes both
    assert counts["deleted"] == 2
    assert not EventSubscription.objects.filter(pk=first.pk).exists()


def test_a_refused_call_for_one_row_does_not_stop_the_others(identity, owner, broker):
    # given two rows to delete, and a broker that refuses the first user's deletion
    first = provisioned_subscription(identity, owner)
    second = provisioned_subscription(
        identity, owner, observable_objects=[{"object_type": "resource"}]
    )
    identity.offering.customer.owners.remove(owner)
    broker.add(responses.DELETE, f"{MANAGEMENT}/api/users/{first.uuid.hex}", status=400)
    broker.add(responses.DELETE, f"{MANAGEMENT}/api/users/{second.uuid.hex}", status=204)

    # when
    counts = sweep()

    # then the second is revoked and the first stays for the next run
    assert (counts["failed"], counts["deleted"]) == (1, 1)
    assert list(EventSubscription.objects.values_list("pk", flat=True)) == [first.pk]


def test_broker_users_of_a_deleted_owner_are_removed_from_the_pending_list(
    identity, owner, provisioning_broker
):
    # given a deleted owner whose rows went with it (the deletion wrote them down)
    connect_revocation_signals()
    subscription = provisioned_subscription(identity, owner)
    consumer = provisioned_consumer(identity, owner)
    vhost = owner.uuid.hex
    owner.delete()
    disconnect_revocation_signals()
    assert BrokerUserRemoval.objects.count() == 2

    # when
    counts = sweep()

    # then both broker users (and the consumer's queue) are removed, and the list is empty
    assert counts["removed"] == 2
    assert calls(provisioning_broker) == [
        ("DELETE", f"/api/users/{subscription.uuid.hex}"),
        ("DELETE", f"/api/users/{consumer.rmq_username}"),
        ("DELETE", f"/api/queues/{vhost}/{consumer.queue_name}"),
    ]
    assert not BrokerUserRemoval.objects.exists()


def test_a_sweep_with_nothing_to_do_costs_the_same_queries_for_1_and_20_agents(offering, owner):
    # given one agent with a subscription and a consumer
    def add_agent(name: str) -> None:
        identity = AgentIdentityFactory(offering=offering, name=name, created_by=owner)
        provisioned_subscription(identity, owner)
        provisioned_consumer(identity, owner)

    add_agent("agent-0")
    with CaptureQueriesContext(connection) as one:
        sweep()

    # when 19 more agents are there
    for n in range(1, 20):
        add_agent(f"agent-{n}")
    with CaptureQueriesContext(connection) as twenty:
        counts = sweep()

    # then the sweep reads them in the same number of queries
    assert set(counts.values()) == {0}
    assert len(twenty) == len(one)
