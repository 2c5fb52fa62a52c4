"""Per-agent gauges and the observer's beat and lease: what the shipped alert rules page on.

One series per event-consuming agent and family: the cardinality is the number of agents
registered in the database, never the number of connections, queues or vhosts on the
broker. An agent that only polls the API (no subscription, no event consumer) has no
broker connection to lose, so it gets no series rather than a permanent "disconnected".
"""

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from prometheus_client.core import GaugeMetricFamily

from marketplace.metrics.selectors import ObserverReading, OfferingOwner
from marketplace.stats.merge import AgentStatus, ConnectionReport

AGENT_LABELS = ["agent_uuid", "agent", "offering_uuid", "offering", "customer_uuid", "customer"]


def build_agent_families(
    report: ConnectionReport, *, owners: dict[UUID, OfferingOwner]
) -> Iterator[GaugeMetricFamily]:
    """Yield agentstats_agent_connected and agentstats_agent_unconsumed_messages."""
    connected = GaugeMetricFamily(
        "agentstats_agent_connected",
        "1 when the event-consuming agent is connected to the broker (the stats' rule), else 0.",
        labels=AGENT_LABELS,
    )
    unconsumed = GaugeMetricFamily(
        "agentstats_agent_unconsumed_messages",
        "Messages waiting in the agent's queues that have no consumer.",
        labels=AGENT_LABELS,
    )
    for agent in report.agents:
        row = agent.row
        if not row.subscriptions and row.consumer is None:
            continue
        owner = owners.get(row.offering_uuid)
        label_values = [
            str(row.uuid),
            row.name,
            str(row.offering_uuid),
            row.offering_name,
            str(owner.customer_uuid) if owner else "",
            owner.customer_name if owner else "",
        ]
        connected.add_metric(label_values, 1 if agent.is_connected else 0)
        unconsumed.add_metric(label_values, _count_unconsumed_messages(agent))
    yield connected
    yield unconsumed


def build_observer_families(observer: ObserverReading) -> Iterator[GaugeMetricFamily]:
    """The observer's last beat and the active observer's lease, as Unix times (0: never
    beat, or no observer holds the lease). No label names a process: the admin's
    observer status says which one is active."""
    yield _timestamp_gauge(
        "agentstats_observer_last_beat_timestamp_seconds",
        "Unix time of the connection observer's last beat (0: it never beat).",
        observer.last_beat_at,
    )
    yield _timestamp_gauge(
        "agentstats_observer_lease_expires_timestamp_seconds",
        "Unix time the active observer's lease runs out unless renewed; every beat renews "
        "it (0: no observer holds it).",
        observer.lease_expires_at,
    )
    yield _timestamp_gauge(
        "agentstats_observer_lease_acquired_timestamp_seconds",
        "Unix time the active observer took the lease: it changes on every handover "
        "(0: no observer holds it).",
        observer.lease_acquired_at,
    )


def _timestamp_gauge(name: str, documentation: str, moment: datetime | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=moment.timestamp() if moment else 0)


def _count_unconsumed_messages(agent: AgentStatus) -> int:
    return sum(
        queue.messages or 0
        for queue in agent.queues
        if queue.exists_on_broker and not queue.consumers
    )
