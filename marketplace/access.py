"""Who may see and manage which agents: the one visibility rule every feature uses.

Rights are current, never remembered: staff, and the current owners of the offering's
customer, manage an agent. Having created an agent (`created_by`) or owning one of its
subscriptions or its event consumer grants nothing by itself: only managers create agents,
so a creator who is no longer an owner has lost the right, also on what it created.
"""

from uuid import UUID

from django.db.models import Q, QuerySet

from agentstats.api.permissions import is_global_reader
from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentLog,
    AgentProcessor,
    AgentService,
    Customer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from marketplace.names import AuthorizedVia


def _managed_identity_filter(user: User, prefix: str = "") -> Q:
    return Q(**{f"{prefix}offering__customer__owners": user})


def restrict_to_visible_identities(
    queryset: QuerySet[AgentIdentity], user: User
) -> QuerySet[AgentIdentity]:
    """Narrow agents to those the user may see: all for staff/support, else those of the
    customers it owns now."""
    if is_global_reader(user):
        return queryset
    return queryset.filter(_managed_identity_filter(user)).distinct()


def list_visible_identities(user: User) -> QuerySet[AgentIdentity]:
    """Agents the user may see, with what the identity API shows of them."""
    return restrict_to_visible_identities(
        AgentIdentity.objects.select_related("offering", "created_by").prefetch_related("services"),
        user,
    )


def list_visible_services(user: User) -> QuerySet[AgentService]:
    """Services of the agents the user may see."""
    queryset = AgentService.objects.select_related("identity").prefetch_related("processors")
    if is_global_reader(user):
        return queryset
    return queryset.filter(_managed_identity_filter(user, "identity__")).distinct()


def list_visible_processors(user: User) -> QuerySet[AgentProcessor]:
    """Processors of the agents the user may see."""
    queryset = AgentProcessor.objects.select_related("service")
    if is_global_reader(user):
        return queryset
    return queryset.filter(_managed_identity_filter(user, "service__identity__")).distinct()


def list_visible_subscriptions(user: User) -> QuerySet[EventSubscription]:
    """Subscriptions of the agents the user may see."""
    queryset = EventSubscription.objects.select_related("user", "agent_identity")
    if is_global_reader(user):
        return queryset
    return queryset.filter(_managed_identity_filter(user, "agent_identity__")).distinct()


def list_visible_subscription_queues(user: User) -> QuerySet[EventSubscriptionQueue]:
    """Queues of the subscriptions the user may see."""
    queryset = EventSubscriptionQueue.objects.select_related("event_subscription__user", "offering")
    if is_global_reader(user):
        return queryset
    return queryset.filter(
        _managed_identity_filter(user, "event_subscription__agent_identity__")
    ).distinct()


def can_manage_offering_agents(user: User, offering: Offering) -> bool:
    """Staff and the owners of the offering's customer manage its agents."""
    return bool(user.is_staff) or is_customer_owner(user, offering)


def can_register_identity(user: User, offering: Offering, *, name: str) -> bool:
    """Offering managers register (and re-register) any agent of the offering; having
    created the agent grants nothing more."""
    return can_manage_offering_agents(user, offering)


def is_customer_owner(user: User, offering: Offering) -> bool:
    """Whether the user owns the offering's customer now (staff or not); one query."""
    return Customer.owners.through.objects.filter(
        customer_id=offering.customer_id, user_id=user.pk
    ).exists()


def can_manage_identity(user: User, identity: AgentIdentity) -> bool:
    """Staff and the current owners of its customer manage an agent."""
    return can_manage_offering_agents(user, identity.offering)


def find_identity_right(user: User, identity: AgentIdentity) -> AuthorizedVia | None:
    """Which right lets the user manage an agent, the first that applies in this order:
    staff, an owner of the offering's customer; None for none.

    Support users read but never manage, so `support` is never the answer; the creator
    (`identity_manager`) has no right of its own any more (the value stays in the wire
    enum for rows recorded before); this service has no offering-manager or scope roles,
    nor user-scoped consumers (`self`).
    """
    if user.is_staff:
        return AuthorizedVia.STAFF
    if is_customer_owner(user, identity.offering):
        return AuthorizedVia.CUSTOMER_OWNER
    return None


def can_manage_subscription(user: User, subscription: EventSubscription) -> bool:
    """Staff, and whoever manages the subscription's agent (owning the subscription grants
    nothing by itself)."""
    if user.is_staff:
        return True
    identity = subscription.agent_identity
    return identity is not None and can_manage_identity(user, identity)


def can_manage_object(user: User, obj: object) -> bool:
    """Whether the user manages the agent an API object belongs to."""
    if isinstance(obj, AgentIdentity):
        return can_manage_identity(user, obj)
    if isinstance(obj, AgentService):
        return can_manage_identity(user, obj.identity)
    if isinstance(obj, AgentProcessor):
        return can_manage_identity(user, obj.service.identity)
    if isinstance(obj, EventSubscription):
        return can_manage_subscription(user, obj)
    if isinstance(obj, EventSubscriptionQueue):
        return can_manage_subscription(user, obj.event_subscription)
    if isinstance(obj, User):
        return bool(user.is_staff) or obj.pk == user.pk
    return bool(user.is_staff)


def find_offering(offering_uuid: UUID) -> Offering | None:
    """Return the offering with this uuid, or None."""
    return Offering.objects.select_related("customer").filter(uuid=offering_uuid).first()


def find_queue_offering(
    subscription: EventSubscription, offering_uuid: UUID, *, user: User
) -> Offering | None:
    """The offering a subscription may get a queue for: its agent's own, or one the user
    manages; None for any other, as for one that does not exist."""
    offering = find_offering(offering_uuid)
    identity = subscription.agent_identity
    is_own_offering = identity is not None and offering == identity.offering
    if offering is None or not (is_own_offering or can_manage_offering_agents(user, offering)):
        return None
    return offering


def identity_of_object(obj: object) -> AgentIdentity | None:
    """The agent an API object belongs to, if any."""
    if isinstance(obj, AgentIdentity):
        return obj
    if isinstance(obj, AgentService):
        return obj.identity
    if isinstance(obj, AgentProcessor):
        return obj.service.identity
    if isinstance(obj, EventSubscription):
        return obj.agent_identity
    if isinstance(obj, EventSubscriptionQueue):
        return obj.event_subscription.agent_identity
    return None


def is_agent_principal(user: User, identity: AgentIdentity) -> bool:
    """Whether the caller is the agent itself (its customer's owner), as opposed to staff
    acting on it: only the agent's own calls count as it being seen.

    Staff and support who created an agent (staff register agents for others) are still
    acting on it; only as an owner of its customer do they count as the agent."""
    return is_customer_owner(user, identity.offering)


def restrict_to_managed_identities(
    queryset: QuerySet[AgentIdentity], user: User
) -> QuerySet[AgentIdentity]:
    """Narrow agents to those the user manages: all for staff, else those of the customers
    it owns (support reads every agent but manages only these)."""
    if user.is_staff:
        return queryset
    return queryset.filter(_managed_identity_filter(user)).distinct()


def restrict_to_visible_offerings(queryset: QuerySet[Offering], user: User) -> QuerySet[Offering]:
    """Narrow offerings to those whose agents the user may see: all for staff/support, else
    the offerings of the customers it owns now (the agent reads its offering)."""
    if is_global_reader(user):
        return queryset
    visible = Offering.objects.filter(customer__owners=user)
    return queryset.filter(pk__in=visible.values("pk"))


def list_visible_agent_logs(user: User) -> QuerySet[AgentLog]:
    """Log lines of the agents the user may see, newest first."""
    queryset = AgentLog.objects.select_related("identity__offering")
    if is_global_reader(user):
        return queryset
    managed = AgentIdentity.objects.filter(_managed_identity_filter(user))
    return queryset.filter(identity__in=managed.values("pk"))
