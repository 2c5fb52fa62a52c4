"""The admin's live fleet dashboard: the connection report as plain rows for its templates.

`load_fleet_table` validates the filters exactly as the stats API does, asks the database
and the broker, and returns what the table shows. A bad filter or an unreachable broker
is part of that result (the page shows it), never an empty table: an agent is only
reported disconnected when the broker said so.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.urls import reverse

from agentstats.models import User
from marketplace.envelope.selectors import LastErrorLog, find_last_error_logs
from marketplace.models import AgentIdentity, Customer, Offering
from marketplace.names import REPORTED_SERVICE_STATES, QueueKind
from marketplace.stats.answers import fetch_connection_report
from marketplace.stats.fleet_table import find_connected_since, list_source_ips
from marketplace.stats.merge import AgentStatus, ConnectionReport, ConnectionSummary, QueueStatus
from marketplace.stats.serializers import ConnectionStatsQuerySerializer
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError


@dataclass(frozen=True, slots=True)
class ServiceBadge:
    """One service of an agent and the state its badge shows."""

    name: str
    state: str

    @property
    def css_class(self) -> str:
        return f"fleet-state--{self.state.lower()}"


@dataclass(frozen=True, slots=True)
class QueueCell:
    """One queue of an agent: how many messages wait and who reads them."""

    name: str
    label: str
    messages: int | None  # None: the queue's broker node is down, its depth unknown
    consumers: int
    exists_on_broker: bool
    node: str | None = None  # the broker node holding it

    @property
    def is_stalled(self) -> bool:
        """Messages pile up and nobody consumes them."""
        return (
            self.exists_on_broker
            and self.messages is not None
            and self.messages > 0
            and self.consumers == 0
        )


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One agent as the dashboard table shows it."""

    uuid: UUID
    name: str
    offering_name: str
    version: str
    is_connected: bool
    connected_since: datetime | None
    source_ips: tuple[str, ...]
    services: tuple[ServiceBadge, ...]
    queues: tuple[QueueCell, ...]
    admin_url: str | None
    timeline_url: str | None = None
    delivery_blocked_reason: str | None = None
    last_error: LastErrorLog | None = None

    @property
    def has_stalled_queue(self) -> bool:
        return any(queue.is_stalled for queue in self.queues)


@dataclass(frozen=True, slots=True)
class FleetTable:
    """What the table fragment renders: rows and a summary, or why there are none."""

    rows: tuple[DashboardRow, ...] = ()
    summary: ConnectionSummary | None = None
    filter_errors: tuple[str, ...] = ()
    broker_error: str | None = None

    @property
    def status_code(self) -> int:
        """400 for a bad filter, 503 when the broker cannot be asked, else 200."""
        if self.filter_errors:
            return 400
        if self.broker_error is not None:
            return 503
        return 200


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """The options of the dashboard's offering and customer filters: (uuid, label)."""

    offerings: tuple[tuple[str, str], ...]
    customers: tuple[tuple[str, str], ...]
    service_states: tuple[str, ...] = REPORTED_SERVICE_STATES


def load_fleet_table(
    params: Mapping[str, str], *, broker: ManagementClient, is_admin_linked: bool
) -> FleetTable:
    """Validate the filters, then read the fleet; failures are described, not raised."""
    query = ConnectionStatsQuerySerializer(data=read_filter_values(params))
    if not query.is_valid():
        return FleetTable(filter_errors=describe_filter_errors(query.errors))
    try:
        report = fetch_connection_report(query.to_filters(), broker=broker)
    except BrokerError as exc:
        # The broker errors name the failure, never the URL or the credentials.
        return FleetTable(broker_error=str(exc))
    admin_urls = (
        map_agent_admin_urls(agent.row.uuid for agent in report.agents) if is_admin_linked else {}
    )
    last_errors = find_last_error_logs(agent.row.uuid for agent in report.agents)
    return FleetTable(
        rows=build_dashboard_rows(report, admin_urls=admin_urls, last_errors=last_errors),
        summary=report.summary,
    )


def read_filter_values(params: Mapping[str, str]) -> dict[str, str]:
    """The filters the form set; an empty field (the form's "any") sets none."""
    return {
        field: params[field]
        for field in ConnectionStatsQuerySerializer.filter_names()
        if params.get(field, "").strip()
    }


def describe_filter_errors(errors: Mapping[str, Iterable[object]]) -> tuple[str, ...]:
    """One line per invalid filter, e.g. "service_state: Must be one of ACTIVE, ..."."""
    return tuple(
        f"{field}: {' '.join(str(message) for message in messages)}"
        for field, messages in errors.items()
    )


def build_dashboard_rows(
    report: ConnectionReport,
    *,
    admin_urls: Mapping[UUID, str],
    last_errors: Mapping[UUID, LastErrorLog] | None = None,
) -> tuple[DashboardRow, ...]:
    """Turn the report's agents into table rows, in the report's order."""
    errors = last_errors or {}
    return tuple(
        _build_row(
            agent, admin_url=admin_urls.get(agent.row.uuid), last_error=errors.get(agent.row.uuid)
        )
        for agent in report.agents
    )


def map_agent_admin_urls(uuids: Iterable[UUID]) -> dict[UUID, str]:
    """The admin change page of each agent, in one query."""
    ids = AgentIdentity.objects.filter(uuid__in=list(uuids)).values_list("uuid", "pk")
    return {
        agent_uuid: reverse("admin:marketplace_agentidentity_change", args=[pk])
        for agent_uuid, pk in ids
    }


def can_open_agent_admin(user: User) -> bool:
    """Whether the agent's admin page would open for this user (staff with view rights)."""
    return bool(
        user.is_active and user.is_staff and user.has_perm("marketplace.view_agentidentity")
    )


def list_filter_choices() -> FilterChoices:
    """Every offering and customer, by name, for the filter form (two queries)."""
    offerings = Offering.objects.select_related("customer").order_by("customer__name", "name", "id")
    customers = Customer.objects.order_by("name", "id")
    return FilterChoices(
        offerings=tuple(
            (str(offering.uuid), f"{offering.customer.name} / {offering.name}")
            for offering in offerings
        ),
        customers=tuple((str(customer.uuid), customer.name) for customer in customers),
    )


def _build_row(
    agent: AgentStatus, *, admin_url: str | None, last_error: LastErrorLog | None
) -> DashboardRow:
    row = agent.row
    timeline_url = (
        f"{reverse('admin:marketplace_agentconnectionevent_changelist')}?identity__uuid={row.uuid}"
        if admin_url
        else None
    )
    return DashboardRow(
        uuid=row.uuid,
        name=row.name,
        offering_name=row.offering_name,
        version=row.version,
        is_connected=agent.is_connected,
        connected_since=find_connected_since(agent),
        source_ips=list_source_ips(agent),
        services=tuple(
            ServiceBadge(name=service.name, state=service.state) for service in row.services
        ),
        queues=tuple(
            QueueCell(
                name=queue.name,
                label=_label_queue(queue),
                messages=queue.messages,
                consumers=queue.consumers,
                exists_on_broker=queue.exists_on_broker,
                node=queue.node,
            )
            for queue in agent.queues
        ),
        admin_url=admin_url,
        timeline_url=timeline_url,
        delivery_blocked_reason=agent.delivery_blocked_reason,
        last_error=last_error,
    )


def _label_queue(queue: QueueStatus) -> str:
    # The consumer queue carries every object type the agent asked for.
    if queue.kind == QueueKind.CONSUMER:
        return "consumer"
    return queue.object_type or queue.name
