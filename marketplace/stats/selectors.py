"""The stats' database reads: the filtered agents as plain rows, in a fixed number of
queries."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from rest_framework.authtoken.models import Token

from marketplace.models import (
    AgentIdentity,
    AgentService,
    Customer,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
)
from marketplace.names import report_service_state
from marketplace.stats.merge import AgentRow, ConsumerRow, ServiceRow, SubscriptionRow
from rmq.naming import format_consumer_queue_name, format_queue_name


@dataclass(frozen=True)
class AgentFilters:
    """What the caller narrowed the fleet to; None means no narrowing."""

    agent_uuid: UUID | None = None
    offering_uuid: UUID | None = None
    customer_uuid: UUID | None = None
    service_state: str | None = None
    name: str | None = None
    connected: bool | None = None


@dataclass(frozen=True, slots=True)
class _Owner:
    """The user an agent is reported under."""

    uuid: UUID
    username: str
    full_name: str
    is_staff: bool

    @classmethod
    def of(
        cls, uuid: UUID | None, username: str, first_name: str, last_name: str, is_staff: bool
    ) -> "_Owner | None":
        if uuid is None:
            return None
        return cls(uuid, username, f"{first_name} {last_name}".strip(), is_staff)


def list_agent_rows(filters: AgentFilters) -> list[AgentRow]:
    """Load the filtered agents with services, subscriptions, queues and event consumers
    in 5 queries.

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
    consumers = _load_consumers(chosen)
    agents = []
    for (
        identity_id,
        uuid,
        name,
        offering_uuid,
        offering_name,
        version,
        last_restarted,
        created,
        creator_uuid,
        creator_username,
        creator_first_name,
        creator_last_name,
        creator_is_staff,
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
    ):
        consumer, owner = consumers.get(identity_id, (None, None))
        if consumer is None:
            # An agent without an event consumer is reported under its creator.
            owner = _Owner.of(
                creator_uuid,
                creator_username,
                creator_first_name,
                creator_last_name,
                creator_is_staff,
            )
        agents.append(
            AgentRow(
                uuid=uuid,
                name=name,
                offering_uuid=offering_uuid,
                offering_name=offering_name,
                version=version,
                # The SDK requires a time here; an agent that never reported one counts
                # from its registration.
                last_restarted=last_restarted or created,
                user_uuid=owner.uuid if owner else None,
                user_username=owner.username if owner else None,
                user_full_name=owner.full_name if owner else None,
                user_is_staff=owner.is_staff if owner else None,
                services=tuple(services[identity_id]),
                subscriptions=tuple(subscriptions[identity_id]),
                consumer=consumer,
            )
        )
    return agents


def _load_consumers(chosen: QuerySet[AgentIdentity, Any]) -> dict[int, tuple[ConsumerRow, _Owner]]:
    """The agents' event consumers with their owners, and whether the owner still has an
    API token (its broker password) and a role on the agent's offering, in one query."""
    owns_customer = Exists(
        Customer.owners.through.objects.filter(
            customer_id=OuterRef("identity__offering__customer_id"), user_id=OuterRef("user_id")
        )
    )
    # Only a current owner of the agent's customer may hold its broker credential.
    has_role = Q(owns_customer)
    rows = (
        EventConsumer.objects.filter(identity__in=chosen)
        .annotate(
            has_owner_token=Exists(Token.objects.filter(user_id=OuterRef("user_id"))),
            has_owner_role=ExpressionWrapper(has_role, output_field=BooleanField()),
        )
        .values_list(
            "identity_id",
            "uuid",
            "rmq_username",
            "object_types",
            "auth_kind",
            "auth_token_prefix",
            "auth_token_name",
            "authorized_via",
            "has_owner_token",
            "has_owner_role",
            "user__uuid",
            "user__username",
            "user__first_name",
            "user__last_name",
            "user__is_staff",
            "user__is_active",
        )
    )
    consumers: dict[int, tuple[ConsumerRow, _Owner]] = {}
    for (
        identity_id,
        uuid,
        rmq_username,
        object_types,
        auth_kind,
        auth_token_prefix,
        auth_token_name,
        authorized_via,
        has_owner_token,
        has_owner_role,
        owner_uuid,
        username,
        first_name,
        last_name,
        is_staff,
        is_active,
    ) in rows:
        consumer = ConsumerRow(
            uuid=uuid,
            vhost=owner_uuid.hex,
            rmq_username=rmq_username,
            queue_name=format_consumer_queue_name(uuid.hex),
            object_types=tuple(object_types),
            auth_kind=auth_kind or None,
            auth_token_prefix=auth_token_prefix or None,
            auth_token_name=auth_token_name or None,
            authorized_via=authorized_via or None,
            is_owner_active=is_active,
            has_owner_token=has_owner_token,
            has_owner_role=has_owner_role,
        )
        consumers[identity_id] = (
            consumer,
            _Owner(owner_uuid, username, f"{first_name} {last_name}".strip(), is_staff),
        )
    return consumers


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
