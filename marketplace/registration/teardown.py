"""Taking an owner's broker side down: the owner lock registration shares, and the vhost
that goes once no row uses it.

An owner's vhost (its uuid hex) holds the queues of every subscription and event consumer
it owns. Registration provisions the vhost and a deletion may remove it: both lock the
owner's row first, so a deletion that finds the vhost unused commits before a concurrent
registration provisions it again, or sees that registration's row and keeps it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from agentstats.models import User
from marketplace.models import EventConsumer, EventSubscription, EventSubscriptionQueue
from rmq.client import ManagementClient
from rmq.housekeeping import delete_queue, delete_vhost, is_service_tags, read_vhost_tags
from rmq.provisioning import delete_subscription_user


@dataclass(frozen=True)
class SubscriptionsOnBroker:
    """What subscriptions have on the broker: their users, their queues, their owners."""

    usernames: list[str]
    queues: list[tuple[str, str]]
    owners: list[User]


def collect_subscriptions_on_broker(
    subscriptions: QuerySet[EventSubscription],
) -> SubscriptionsOnBroker:
    """Read the broker names of the subscriptions (before their rows are deleted)."""
    rows = list(subscriptions.select_related("user"))
    queues = EventSubscriptionQueue.objects.filter(event_subscription__in=rows).select_related(
        "event_subscription__user", "offering"
    )
    return SubscriptionsOnBroker(
        usernames=[row.uuid.hex for row in rows],
        queues=[(queue.vhost, queue.queue_name) for queue in queues],
        owners=[row.user for row in rows],
    )


def remove_subscriptions_from_broker(
    collected: SubscriptionsOnBroker, *, broker: ManagementClient
) -> None:
    """Delete the subscriptions' users (the broker closes their connections), then queues."""
    for username in collected.usernames:
        delete_subscription_user(broker, username=username)
    for vhost, name in collected.queues:
        delete_queue(broker, vhost=vhost, name=name)


def lock_vhost_owners(user_ids: Iterable[int]) -> None:
    """Lock the owners' rows until the transaction ends (in id order, so never a deadlock).

    FOR NO KEY UPDATE: it serialises registration and teardown of one vhost without
    blocking rows that merely reference the owner (tokens, new agents).
    """
    list(
        User.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted(set(user_ids)))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def is_vhost_in_use(user_id: int) -> bool:
    """Whether a subscription or an event consumer of the owner still needs its vhost."""
    return (
        EventSubscription.objects.filter(user_id=user_id).exists()
        or EventConsumer.objects.filter(user_id=user_id).exists()
    )


def remove_unused_vhosts(owners: Iterable[User], *, broker: ManagementClient) -> None:
    """Delete the vhost of each owner no row uses any more (call with the owners locked).

    Only a vhost tagged as the service's is deleted: one it never tagged is left as it is.
    """
    for owner in {owner.pk: owner for owner in owners}.values():
        if is_vhost_in_use(owner.pk):
            continue
        vhost = owner.uuid.hex
        tags = read_vhost_tags(broker, vhost=vhost)
        if tags is not None and is_service_tags(tags):
            delete_vhost(broker, vhost=vhost)


def delete_subscription_queue(queue: EventSubscriptionQueue, *, broker: ManagementClient) -> None:
    """Delete a subscription's queue row and the broker queue; the row stays if the broker
    fails (the subscription keeps its owner's vhost in use)."""
    with transaction.atomic():
        # The subscription's lock, as create_subscription_queue takes it.
        EventSubscription.objects.select_for_update().filter(
            pk=queue.event_subscription_id
        ).values_list("pk", flat=True).first()
        vhost, name = queue.vhost, queue.queue_name
        queue.delete()
        delete_queue(broker, vhost=vhost, name=name)
