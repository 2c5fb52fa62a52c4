"""The limits of an owner's vhost, sized from the database on every provisioning.

Every subscription queue and event consumer queue of the owner lives in its vhost, and each
subscription and consumer is one broker user. Counted inside the registering transaction,
after its own row is written, so the queue the service is about to declare always fits;
registrations of other agents of the same owner that commit meanwhile, and queues left on
the broker that no row names, are what the headroom absorbs.
"""

from django.conf import settings

from agentstats.models import User
from marketplace.models import EventConsumer, EventSubscription, EventSubscriptionQueue
from rmq.limits import VhostLimits, compute_vhost_limits


def build_owner_vhost_limits(owner: User) -> VhostLimits:
    """The `max-queues` and `max-connections` the owner's agents need, plus the headroom."""
    consumers = EventConsumer.objects.filter(user=owner).count()
    return compute_vhost_limits(
        queues=EventSubscriptionQueue.objects.filter(event_subscription__user=owner).count()
        + consumers,
        broker_users=EventSubscription.objects.filter(user=owner).count() + consumers,
        connections_per_user=settings.RABBITMQ_CONNECTIONS_PER_BROKER_USER,
        headroom=settings.RABBITMQ_VHOST_LIMIT_HEADROOM,
    )
