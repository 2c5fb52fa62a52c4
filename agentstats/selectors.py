"""The read path of the connection stats: agent rows in a fixed number of queries, the
broker snapshot in a fixed number of calls, and their merge."""

from dataclasses import dataclass
from uuid import UUID

from django.db.models import Prefetch, QuerySet

from agentstats.connections import (
    AgentRow,
    ConnectionReport,
    ServiceRow,
    SubscriptionRow,
    build_connection_report,
)
from marketplace.models import (
    AgentIdentity,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
    format_queue_name,
)
from rmq.client import ManagementClient
from rmq.snapshot_cache import get_broker_snapshot


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
    """Load the filtered agents with services, subscriptions and queues (4 queries)."""
    return [_to_agent_row(identity) for identity in _filtered_identities(filters)]


def fetch_connection_report(filters: AgentFilters, *, broker: ManagementClient) -> ConnectionReport:
    """Build the report; raises BrokerError when the broker cannot be asked."""
    rows = list_agent_rows(filters)
    snapshot = get_broker_snapshot(broker)
    return build_connection_report(rows, snapshot, connected=filters.connected)


def _filtered_identities(filters: AgentFilters) -> QuerySet[AgentIdentity]:
    queryset = AgentIdentity.objects.select_related("offering", "created_by").prefetch_related(
        Prefetch("services", queryset=AgentService.objects.order_by("name", "id")),
        Prefetch(
            "event_subscriptions",
            queryset=EventSubscription.objects.select_related("user").prefetch_related(
                Prefetch(
                    "queues", queryset=EventSubscriptionQueue.objects.select_related("offering")
                )
            ),
        ),
    )
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


def _to_agent_row(identity: AgentIdentity) -> AgentRow:
    creator = identity.created_by
    return AgentRow(
        uuid=identity.uuid,
        name=identity.name,
        offering_uuid=identity.offering.uuid,
        offering_name=identity.offering.name,
        version=identity.version,
        # The SDK requires a time here; an agent that never reported one counts from
        # its registration.
        last_restarted=identity.last_restarted or identity.created,
        user_uuid=creator.uuid if creator else None,
        user_username=creator.username if creator else None,
        user_full_name=creator.get_full_name() if creator else None,
        user_is_staff=creator.is_staff if creator else None,
        services=tuple(
            ServiceRow(
                uuid=service.uuid,
                name=service.name,
                state=service.state.upper(),
                modified=service.modified,
            )
            for service in identity.services.all()
        ),
        subscriptions=tuple(
            SubscriptionRow(
                uuid=sub.uuid,
                created=sub.created,
                vhost=sub.user.uuid.hex,
                object_types=tuple(sub.object_types),
                queue_names=tuple(
                    format_queue_name(
                        subscription_hex=sub.uuid.hex,
                        offering_hex=queue.offering.uuid.hex,
                        object_type=queue.object_type,
                    )
                    for queue in sub.queues.all()
                ),
            )
            for sub in identity.event_subscriptions.all()
        ),
    )
