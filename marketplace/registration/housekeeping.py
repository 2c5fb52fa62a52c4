"""The broker reconcile: the database says what the service's vhosts should hold.

The broker is shared, so the reconcile works only in the service's own vhosts: tagged
SERVICE_VHOST_TAG and named after a user of this database. There a queue a row names but
the broker lacks is declared again, with its arguments. A queue of the service's naming,
a 32-hex user whose permissions are all in own vhosts, or an own vhost that no row
explains is removed once it has stayed unexplained for BROKER_ORPHAN_GRACE_SECONDS
(registration declares on the broker before its transaction commits); until then it is
remembered in BrokerOrphan, and forgotten when a row explains it again or it is gone.

Cost is fixed: four bulk listings and five queries per run, plus one call per object
declared or removed.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction

from agentstats.models import User
from marketplace.models import BrokerOrphan, EventConsumer, EventSubscription
from marketplace.models import EventSubscriptionQueue as SubscriptionQueue
from marketplace.names import BrokerObjectKind
from marketplace.registration.teardown import is_vhost_in_use, lock_vhost_owners
from rmq.client import JSONValue, ManagementClient
from rmq.housekeeping import (
    BrokerInventory,
    declare_queue,
    delete_queue,
    delete_vhost,
    fetch_broker_inventory,
)
from rmq.naming import (
    format_consumer_queue_name,
    format_queue_name,
    is_service_queue_name,
    is_service_username,
)
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS, delete_broker_user

# (kind, vhost, name): a broker object as the reconcile names it; vhost "" for a user.
ObjectKey = tuple[str, str, str]
# The order removals run in: users first, so the broker closes their connections.
REMOVAL_ORDER = (BrokerObjectKind.USER, BrokerObjectKind.QUEUE, BrokerObjectKind.VHOST)


@dataclass(frozen=True)
class ExpectedBroker:
    """What the rows say the broker should hold."""

    queues: Mapping[tuple[str, str], Mapping[str, JSONValue]]
    usernames: frozenset[str]
    used_vhosts: frozenset[str]


def run_reconcile_broker(
    *, now: datetime, dry_run: bool = False, broker: ManagementClient | None = None
) -> dict[str, int]:
    """Bring the service's own vhosts in line with the database, once; return the counts.

    With `dry_run` nothing is written, on the broker or in the database: the counts say
    what a run would do now.
    """
    broker = broker or ManagementClient.from_settings()
    # The broker first: a row committed before the listing is then always seen.
    inventory = fetch_broker_inventory(broker)
    own_vhosts = find_own_vhosts(inventory)
    expected = read_expected_broker()
    missing = sorted(
        key for key in expected.queues if key[0] in own_vhosts and key not in inventory.queues
    )
    unexplained = find_unexplained(inventory, own_vhosts=own_vhosts, expected=expected)
    remembered = {
        (orphan.kind, orphan.vhost, orphan.name): orphan for orphan in BrokerOrphan.objects.all()
    }
    grace = timedelta(seconds=settings.BROKER_ORPHAN_GRACE_SECONDS)
    due = sorted(
        key
        for key, orphan in remembered.items()
        if key in unexplained and now - orphan.first_seen_at >= grace
    )
    forgotten = [remembered[key].pk for key in remembered if key not in unexplained]
    first_seen = sorted(key for key in unexplained if key not in remembered)
    counts = {
        "queues_redeclared": len(missing),
        "users_removed": _count(due, BrokerObjectKind.USER),
        "queues_removed": _count(due, BrokerObjectKind.QUEUE),
        "vhosts_removed": _count(due, BrokerObjectKind.VHOST),
        "orphans_first_seen": len(first_seen),
        "orphans_waiting": len(unexplained) - len(due),
        "orphans_forgotten": len(forgotten),
    }
    if dry_run:
        return counts
    for vhost, name in missing:
        declare_queue(broker, vhost=vhost, name=name, arguments=expected.queues[(vhost, name)])
    BrokerOrphan.objects.filter(pk__in=forgotten).delete()
    BrokerOrphan.objects.bulk_create(
        [
            BrokerOrphan(kind=kind, vhost=vhost, name=name, first_seen_at=now)
            for kind, vhost, name in first_seen
        ],
        ignore_conflicts=True,
    )
    for kind in REMOVAL_ORDER:
        for key in [key for key in due if key[0] == kind]:
            if not remove_orphan(key, broker=broker):
                counts["vhosts_removed"] -= 1
            remembered[key].delete()
    return counts


def find_own_vhosts(inventory: BrokerInventory) -> frozenset[str]:
    """The vhosts that are the service's: tagged as such, and named after a user here."""
    candidates = [UUID(name) for name in inventory.tagged_vhosts() if is_service_username(name)]
    return frozenset(
        uuid.hex for uuid in User.objects.filter(uuid__in=candidates).values_list("uuid", flat=True)
    )


def read_expected_broker() -> ExpectedBroker:
    """The queues (with their arguments), users and vhosts the rows explain."""
    queues: dict[tuple[str, str], Mapping[str, JSONValue]] = {}
    for subscription, owner, offering, object_type in SubscriptionQueue.objects.values_list(
        "event_subscription__uuid",
        "event_subscription__user__uuid",
        "offering__uuid",
        "object_type",
    ):
        name = format_queue_name(
            subscription_hex=subscription.hex, offering_hex=offering.hex, object_type=object_type
        )
        queues[(owner.hex, name)] = {}
    consumers = list(EventConsumer.objects.values_list("uuid", "user__uuid", "rmq_username"))
    for consumer, owner, _ in consumers:
        queues[(owner.hex, format_consumer_queue_name(consumer.hex))] = CONSUMER_QUEUE_ARGUMENTS
    subscriptions = list(EventSubscription.objects.values_list("uuid", "user__uuid"))
    return ExpectedBroker(
        queues=queues,
        usernames=frozenset(
            [subscription.hex for subscription, _ in subscriptions]
            + [username for _, _, username in consumers]
        ),
        used_vhosts=frozenset(
            [owner.hex for _, owner in subscriptions] + [owner.hex for _, owner, _ in consumers]
        ),
    )


def find_unexplained(
    inventory: BrokerInventory, *, own_vhosts: frozenset[str], expected: ExpectedBroker
) -> set[ObjectKey]:
    """The broker objects of the service's own naming, in its own vhosts, no row explains.

    A user counts only when it has permissions, all of them in own vhosts: a user with
    none may be another service's, or one of ours being provisioned.
    """
    unexplained: set[ObjectKey] = {
        (BrokerObjectKind.QUEUE.value, vhost, name)
        for vhost, name in inventory.queues
        if vhost in own_vhosts
        and is_service_queue_name(name)
        and (vhost, name) not in expected.queues
    }
    for name in inventory.users:
        vhosts = inventory.permission_vhosts.get(name, frozenset())
        if (
            is_service_username(name)
            and name not in expected.usernames
            and vhosts
            and vhosts <= own_vhosts
        ):
            unexplained.add((BrokerObjectKind.USER.value, "", name))
    unexplained.update(
        (BrokerObjectKind.VHOST.value, vhost, vhost) for vhost in own_vhosts - expected.used_vhosts
    )
    return unexplained


def remove_orphan(key: ObjectKey, *, broker: ManagementClient) -> bool:
    """Remove one unexplained broker object; False when a vhost turned out to be in use."""
    kind, vhost, name = key
    if kind == BrokerObjectKind.USER:
        delete_broker_user(broker, username=name)
    elif kind == BrokerObjectKind.QUEUE:
        delete_queue(broker, vhost=vhost, name=name)
    else:
        return remove_vhost_unless_used(vhost, broker=broker)
    return True


def remove_vhost_unless_used(vhost: str, *, broker: ManagementClient) -> bool:
    """Delete an owner's vhost under the owner lock registration takes, if still unused."""
    with transaction.atomic():
        owner_ids = list(User.objects.filter(uuid=UUID(vhost)).values_list("pk", flat=True))
        lock_vhost_owners(owner_ids)
        if not owner_ids or is_vhost_in_use(owner_ids[0]):
            return False
        delete_vhost(broker, vhost=vhost)
    return True


def _count(keys: Iterable[ObjectKey], kind: BrokerObjectKind) -> int:
    return sum(1 for key in keys if key[0] == kind)
