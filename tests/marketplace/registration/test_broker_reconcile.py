"""The broker reconcile with the management API mocked: lost queues are declared again with
their arguments, objects no row explains go only after the grace period, and nothing
outside the service's own vhosts and names is ever touched."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import BrokerOrphan
from marketplace.registration.housekeeping import remove_vhost_unless_used, run_reconcile_broker
from rmq.client import ManagementClient
from rmq.naming import SERVICE_VHOST_TAG, format_consumer_queue_name
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS
from tests.factories import (
    AgentIdentityFactory,
    EventConsumerFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
    UserFactory,
)
from tests.kit.broker import MANAGEMENT
from tests.marketplace.consumers.management import ANY_RESOURCE, recorded_calls

GRACE = 900


@pytest.fixture(autouse=True)
def _grace(settings, db) -> None:
    settings.BROKER_ORPHAN_GRACE_SECONDS = GRACE


def mock_broker(
    broker: responses.RequestsMock,
    *,
    vhosts: dict[str, list[str]],
    queues: list[tuple[str, str]] = (),  # type: ignore[assignment]
    permissions: list[tuple[str, str]] = (),  # type: ignore[assignment]
    users: list[str] = (),  # type: ignore[assignment]
) -> None:
    """A broker listing these vhosts (name -> tags), queues, and users with permissions."""
    broker.reset()
    broker.add(
        responses.GET,
        f"{MANAGEMENT}/api/vhosts",
        json=[{"name": name, "tags": tags} for name, tags in vhosts.items()],
    )
    broker.add(
        responses.GET,
        f"{MANAGEMENT}/api/queues",
        json=[{"vhost": vhost, "name": name} for vhost, name in queues],
    )
    listed = sorted({user for user, _ in permissions} | {"guest", *users})
    broker.add(responses.GET, f"{MANAGEMENT}/api/users", json=[{"name": user} for user in listed])
    broker.add(
        responses.GET,
        f"{MANAGEMENT}/api/permissions",
        json=[{"user": user, "vhost": vhost} for user, vhost in permissions],
    )
    broker.add(responses.PUT, ANY_RESOURCE, status=201)
    broker.add(responses.DELETE, ANY_RESOURCE, status=204)


def writes(broker: responses.RequestsMock) -> list[tuple[str, str, object]]:
    return [call for call in recorded_calls(broker) if call[0] != "GET"]


def test_queues_the_database_has_and_the_broker_lost_are_declared_again(broker, fake_clock):
    # given a subscription queue and an event consumer of one owner; the broker lost both
    queue = EventSubscriptionQueueFactory()
    owner = queue.event_subscription.user
    consumer = EventConsumerFactory(identity=AgentIdentityFactory(created_by=owner))
    mock_broker(broker, vhosts={owner.uuid.hex: [SERVICE_VHOST_TAG]})

    # when
    counts = run_reconcile_broker(now=fake_clock.now())

    # then each is declared durable, the consumer's with upstream's arguments
    assert counts["queues_redeclared"] == 2
    assert sorted(writes(broker)) == sorted(
        [
            (
                "PUT",
                f"/api/queues/{owner.uuid.hex}/{queue.queue_name}",
                {"durable": True, "auto_delete": False, "arguments": {}},
            ),
            (
                "PUT",
                f"/api/queues/{owner.uuid.hex}/{consumer.queue_name}",
                {"durable": True, "auto_delete": False, "arguments": CONSUMER_QUEUE_ARGUMENTS},
            ),
        ]
    )


@pytest.mark.parametrize("tags", [[], ["other-service"]])
def test_lost_queues_in_a_vhost_without_the_services_tag_are_not_declared(tags, broker, fake_clock):
    # given
    queue = EventSubscriptionQueueFactory()
    mock_broker(broker, vhosts={queue.vhost: tags})

    # when
    counts = run_reconcile_broker(now=fake_clock.now())

    # then
    assert counts["queues_redeclared"] == 0
    assert writes(broker) == []


def test_an_unexplained_queue_and_user_survive_the_grace_period_and_go_after_it(broker, fake_clock):
    # given an owner's vhost, still used by a subscription, with a consumer queue and a
    # broker user that no row names
    subscription = EventSubscriptionFactory()
    vhost = subscription.user.uuid.hex
    orphan_queue = format_consumer_queue_name(uuid.uuid4().hex)
    orphan_user = uuid.uuid4().hex
    state = {
        "vhosts": {vhost: [SERVICE_VHOST_TAG]},
        "queues": [(vhost, orphan_queue)],
        "permissions": [(orphan_user, vhost), (subscription.uuid.hex, vhost)],
    }
    mock_broker(broker, **state)

    # when first seen, and again just within the grace
    first = run_reconcile_broker(now=fake_clock.now())
    fake_clock.advance(GRACE - 1)
    mock_broker(broker, **state)
    within = run_reconcile_broker(now=fake_clock.now())

    # then nothing was removed yet
    assert first["orphans_first_seen"] == 2
    assert within["orphans_waiting"] == 2
    assert writes(broker) == []
    assert BrokerOrphan.objects.count() == 2

    # when the grace has passed
    fake_clock.advance(1)
    mock_broker(broker, **state)
    after = run_reconcile_broker(now=fake_clock.now())

    # then the user goes first, then the queue, and nothing is remembered any more
    assert (after["users_removed"], after["queues_removed"]) == (1, 1)
    assert writes(broker) == [
        ("DELETE", f"/api/users/{orphan_user}", None),
        ("DELETE", f"/api/queues/{vhost}/{orphan_queue}", None),
    ]
    assert not BrokerOrphan.objects.exists()


def test_a_name_a_row_explains_again_is_forgotten(broker, fake_clock):
    # given a queue seen unexplained (its registration had not committed yet)
    consumer_uuid = uuid.uuid4()
    identity = AgentIdentityFactory()
    owner = identity.created_by
    EventSubscriptionFactory(agent_identity=identity)
    state = {
        "vhosts": {owner.uuid.hex: [SERVICE_VHOST_TAG]},
        "queues": [(owner.uuid.hex, format_consumer_queue_name(consumer_uuid.hex))],
    }
    mock_broker(broker, **state)
    run_reconcile_broker(now=fake_clock.now())

    # when its row commits, and a run comes after the grace
    EventConsumerFactory(identity=identity, uuid=consumer_uuid)
    fake_clock.advance(GRACE * 2)
    mock_broker(broker, **state)
    counts = run_reconcile_broker(now=fake_clock.now())

    # then it is forgotten, not removed
    assert counts["orphans_forgotten"] == 1
    assert writes(broker) == []
    assert not BrokerOrphan.objects.exists()


def test_an_unused_own_vhost_goes_after_the_grace(broker, fake_clock):
    # given a tagged vhost of a user here who owns no subscription or consumer
    owner = UserFactory()
    state = {"vhosts": {owner.uuid.hex: [SERVICE_VHOST_TAG]}}
    mock_broker(broker, **state)
    run_reconcile_broker(now=fake_clock.now())

    # when
    fake_clock.advance(GRACE)
    mock_broker(broker, **state)
    counts = run_reconcile_broker(now=fake_clock.now())

    # then
    assert counts["vhosts_removed"] == 1
    assert writes(broker) == [("DELETE", f"/api/vhosts/{owner.uuid.hex}", None)]


def test_the_vhost_removal_rechecks_the_rows_under_the_owners_lock(broker):
    # given a vhost seen unused, which a registration has used since
    owner = UserFactory()
    EventConsumerFactory(identity=AgentIdentityFactory(created_by=owner), user=owner)
    broker.add(responses.DELETE, ANY_RESOURCE, status=204)

    # when
    removed = remove_vhost_unless_used(owner.uuid.hex, broker=ManagementClient.from_settings())

    # then
    assert removed is False
    assert writes(broker) == []


def test_nothing_outside_the_services_own_vhosts_and_names_is_touched(broker, fake_clock):
    # given: a tagged vhost of a user here (own), an untagged one of a user here, and a
    # tagged one named after no user here (another database's)
    own = EventSubscriptionFactory().user.uuid.hex
    untagged = UserFactory().uuid.hex
    foreign_db = uuid.uuid4().hex
    stray = format_consumer_queue_name(uuid.uuid4().hex)
    both_vhosts_user, no_permission_user = uuid.uuid4().hex, uuid.uuid4().hex
    state = {
        "vhosts": {own: [SERVICE_VHOST_TAG], untagged: [], foreign_db: [SERVICE_VHOST_TAG]},
        "queues": [
            (own, "amq.gen-JzTY20BRgKO-HjmUJj0wLg"),
            (own, "orders_for_someone_else"),
            (own, f"consumer_{uuid.uuid4().hex}x"),
            (untagged, stray),
            (foreign_db, stray),
            ("/", stray),
        ],
        "permissions": [
            (both_vhosts_user, own),
            (both_vhosts_user, "/"),
            ("ops-user", own),
            (uuid.uuid4().hex, foreign_db),
        ],
        "users": [no_permission_user],
    }
    mock_broker(broker, **state)

    # when it runs twice, far apart
    run_reconcile_broker(now=fake_clock.now())
    fake_clock.advance(GRACE * 10)
    mock_broker(broker, **state)
    counts = run_reconcile_broker(now=fake_clock.now())

    # then nothing was written, nothing is even remembered
    assert writes(broker) == []
    assert counts["orphans_waiting"] == 0
    assert not BrokerOrphan.objects.exists()


def test_a_dry_run_writes_nothing_and_says_what_a_run_would_do(broker, fake_clock):
    # given a lost queue and an unexplained user remembered past the grace
    queue = EventSubscriptionQueueFactory()
    vhost = queue.vhost
    orphan_user = uuid.uuid4().hex
    BrokerOrphan.objects.create(
        kind="user", name=orphan_user, first_seen_at=fake_clock.now() - timedelta(days=1)
    )
    mock_broker(broker, vhosts={vhost: [SERVICE_VHOST_TAG]}, permissions=[(orphan_user, vhost)])

    # when
    counts = run_reconcile_broker(now=fake_clock.now(), dry_run=True)

    # then
    assert (counts["queues_redeclared"], counts["users_removed"]) == (1, 1)
    assert writes(broker) == []
    assert BrokerOrphan.objects.count() == 1


def make_fleet(size: int) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """`size` owners, each with an agent, a subscription queue and an event consumer, as
    the broker lists them (all in place)."""
    vhosts, queues = {}, []
    for _ in range(size):
        queue: Any = EventSubscriptionQueueFactory()
        consumer: Any = EventConsumerFactory(identity=queue.event_subscription.agent_identity)
        vhosts[queue.vhost] = [SERVICE_VHOST_TAG]
        queues += [(queue.vhost, queue.queue_name), (consumer.vhost, consumer.queue_name)]
    return vhosts, queues


def test_a_run_costs_the_same_listings_and_queries_whatever_the_fleet_size(broker, fake_clock):
    # given
    costs = []
    for size in (1, 20):
        vhosts, queues = make_fleet(size)
        mock_broker(broker, vhosts=vhosts, queues=queues)

        # when a run finds nothing to do
        with CaptureQueriesContext(connection) as queries:
            counts = run_reconcile_broker(now=fake_clock.now())
        costs.append((len(broker.calls), len(queries)))
        assert set(counts.values()) == {0}

    # then
    assert costs[0] == costs[1]
    assert costs[0][0] == 4
