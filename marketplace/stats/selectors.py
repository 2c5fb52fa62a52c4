"""The stats' database reads: the filtered agents as plain rows, in a fixed number of
queries."""

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from django.db.models import QuerySet

from marketplace.models import (
    AgentIdentity,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
)
from marketplace.names import report_service_state
from marketplace.stats.merge import AgentRow, ServiceRow, SubscriptionRow
from rmq.naming import format_queue_name


@dataclass(frozen=True)
class AgentFilters:
    """What the caller narrowed the fleet to; None means no narrowing."""

    agent_uuid: UUID | None = None
    offering_uuid: UUID | None = None
    customer_uuid: UUID | None = None
    service_state: str | None = None
    name: str | None = None
    connected: bool | None = None


def list_agent_rows(filters: AgentFilters) -> list[AgentRow]:
    """Load the filtered agents with services, subscriptions and queues in 4 queries.

    Plain tuples (values_list), not model instances: at fleet scale building model
    objects costs several times the SQL itself.
    """
    identities = _filtered_identities(filters)
    chosen = identities.values("id")
    services: dict[int, list[ServiceRow]] = defaultdict(list)
    for identity_id, uuid, name, state, modified in (
        AgentService.objects.filter(identity__in=chosen)
        .order_by("name", "id")
        .values_list("identity_id", "uuid", "name", "state", "modified")
    ):
        services[identity_id].append(
            ServiceRow(uuid=uuid, name=name, state=report_service_state(state), modified=modified)
        )
    queue_names: dict[int, list[str]] = defaultdict(list)
    for subscription_id, subscription_uuid, offering_uuid, object_type in (
        EventSubscriptionQueue.objects.filter(event_subscription__agent_identity__in=chosen)
        .order_by("created", "id")
        .values_list(
            "event_subscription_id", "event_subscription__uuid", "offering__uuid", "object_type"
        )
    ):
        queue_names[subscription_id].append(
            format_queue_name(
                subscription_hex=subscription_uuid.hex,
                offering_hex=offering_uuid.hex,
                object_type=object_type,
            )
        )
    subscriptions: dict[int, list[SubscriptionRow]] = defaultdict(list)
    for identity_id, subscription_id, uuid, created, owner_uuid, observed in (
        EventSubscription.objects.filter(agent_identity__in=chosen)
        .order_by("created", "id")
        .values_list(
            "agent_identity_id", "id", "uuid", "created", "user__uuid", "observable_objects"
        )
    ):
        subscriptions[identity_id].append(
            SubscriptionRow(
                uuid=uuid,
                created=created,
                vhost=owner_uuid.hex,
                object_types=tuple(
                    item["object_type"] for item in observed if "object_type" in item
                ),
                queue_names=tuple(queue_names[subscription_id]),
            )
        )
    return [
        AgentRow(
            uuid=uuid,
            name=name,
            offering_uuid=offering_uuid,
            offering_name=offering_name,
            version=version,
            # The SDK requires a time here; an agent that never reported one counts from
            # its registration.
            last_restarted=last_restarted or created,
            user_uuid=user_uuid,
            user_username=username,
            user_full_name=f"{first_name} {last_name}".strip() if user_uuid else None,
            user_is_staff=is_staff,
            services=tuple(services[identity_id]),
            subscriptions=tuple(subscriptions[identity_id]),
        )
        for (
            identity_id,
            uuid,
            name,
            offering_uuid,
            offering_name,
            version,
            last_restarted,
            created,
            user_uuid,
            username,
            first_name,
            last_name,
            is_staff,
        ) in identities.values_list(
            "id",
            "uuid",
            "name",
            "offering__uuid",
            "offering__name",
            "version",
            "last_restarted",
            "created",
            "created_by__uuid",
            "created_by__username",
            "created_by__first_name",
            "created_by__last_name",
            "created_by__is_staff",
        )
    ]


def is_known_agent(agent_uuid: UUID) -> bool:
    """Whether an agent with this uuid exists (checked before asking the broker)."""
    return AgentIdentity.objects.filter(uuid=agent_uuid).exists()


def _filtered_identities(filters: AgentFilters) -> QuerySet[AgentIdentity]:
    queryset = AgentIdentity.objects.all()
    if filters.agent_uuid is not None:
        queryset = queryset.filter(uuid=filters.agent_uuid)
    if filters.offering_uuid is not None:
        queryset = queryset.filter(offering__uuid=filters.offering_uuid)
    if filters.customer_uuid is not None:
        queryset = queryset.filter(offering__customer__uuid=filters.customer_uuid)
    if filters.name:
        queryset = queryset.filter(name__icontains=filters.name)
    if filters.service_state is not None:
        queryset = queryset.filter(services__state=filters.service_state).distinct()
    return queryset.order_by("offering__name", "name", "id")
