"""Prometheus metrics of the fleet: one broker snapshot per scrape, bounded labels.

Every scrape builds a fresh registry from one database read and one broker snapshot, so
nothing about the fleet outlives the scrape. Only the snapshot's latency histogram and
error counter accumulate across scrapes; they live here, outside the global registry.
Labels are bounded by the number of states, offerings, registered agents and configured
broker nodes, never by connections, queues or vhosts.

A scrape asks the broker itself instead of reusing the stats endpoint's shared snapshot:
the latency and `agentstats_broker_up` then describe the broker at scrape time, and a
scraper's interval is far longer than the sharing TTL anyway.
"""

import collections
import hmac
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from marketplace.metrics.agent_series import build_agent_families, build_observer_families
from marketplace.metrics.jobs import JobRunCollector
from marketplace.metrics.selectors import (
    ObserverReading,
    OfferingOwner,
    list_offering_owners,
    read_observer_status,
)
from marketplace.names import REPORTED_SERVICE_STATES
from marketplace.stats.merge import AgentRow, ConnectionReport, build_connection_report
from marketplace.stats.selectors import AgentFilters, list_agent_rows
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError
from rmq.snapshot import fetch_broker_snapshot
from rmq.types import BrokerSnapshot

BROKER_SNAPSHOT_SECONDS = Histogram(
    "agentstats_broker_snapshot_seconds",
    "Time taken to read all connections and queues from the broker, failures included.",
    registry=None,
)
BROKER_SNAPSHOT_ERRORS = Counter(
    "agentstats_broker_snapshot_errors",
    "Broker snapshots that failed (refused, timed out, rejected or unusable).",
    registry=None,
)


@dataclass(frozen=True, slots=True)
class FleetScrape:
    """What one scrape saw: the agents, and the merged report unless the broker failed;
    the offerings' customers and the observer's last beat and lease."""

    rows: tuple[AgentRow, ...]
    report: ConnectionReport | None
    owners: dict[UUID, OfferingOwner]
    observer: ObserverReading
    # The configured management nodes (host:port), those remembered down after the
    # snapshot, and the one that answered it (None when the broker failed).
    broker_nodes: tuple[str, ...] = ()
    broker_nodes_down: tuple[str, ...] = ()
    answered_by: str | None = None


def scrape_fleet(*, broker: ManagementClient) -> FleetScrape:
    """Read the agents and one timed broker snapshot; a broker failure is counted, not raised."""
    rows = tuple(list_agent_rows(AgentFilters()))
    owners = list_offering_owners()
    observer = read_observer_status()
    try:
        snapshot = _fetch_timed_snapshot(broker)
    except BrokerError:
        BROKER_SNAPSHOT_ERRORS.inc()
        report, answered_by = None, None
    else:
        report, answered_by = build_connection_report(rows, snapshot), snapshot.answered_by
    return FleetScrape(
        rows=rows,
        report=report,
        owners=owners,
        observer=observer,
        broker_nodes=broker.node_labels,
        broker_nodes_down=broker.nodes_remembered_down(),
        answered_by=answered_by,
    )


def build_metrics_registry(
    *, broker: ManagementClient, job_names: Sequence[str] = ()
) -> CollectorRegistry:
    """A fresh registry holding this scrape's gauges, the snapshot latency and errors, and
    the last runs of the named background jobs."""
    registry = CollectorRegistry()
    registry.register(BROKER_SNAPSHOT_SECONDS)
    registry.register(BROKER_SNAPSHOT_ERRORS)
    registry.register(FleetCollector(scrape_fleet(broker=broker)))
    registry.register(JobRunCollector(job_names))
    return registry


class FleetCollector:
    """Gauges of one scrape; the broker-derived ones are left out when the broker failed."""

    def __init__(self, scrape: FleetScrape) -> None:
        self.scrape = scrape

    def collect(self) -> Iterator[Metric]:
        """Yield broker_up, the broker nodes, services by state, the observer's beat and
        lease and, with a snapshot, agents and queues in total, per offering and per agent."""
        report = self.scrape.report
        yield GaugeMetricFamily(
            "agentstats_broker_up",
            "1 when this scrape's broker snapshot succeeded, 0 when it failed.",
            value=0 if report is None else 1,
        )
        yield from _broker_nodes(self.scrape)
        yield _services_by_state(self.scrape.rows)
        yield from build_observer_families(self.scrape.observer)
        if report is not None:
            yield from _agents_and_queues(report)
            yield from build_agent_families(report, owners=self.scrape.owners)


def is_metrics_request_allowed(
    *,
    authorization: str,
    remote_addr: str,
    token: str,
    allowed_networks: Sequence[str],
) -> bool:
    """True for `Bearer <token>` (when a token is set) or a client on an allowed network."""
    return _has_metrics_token(authorization, token=token) or _is_on_networks(
        remote_addr, networks=parse_metrics_networks(tuple(allowed_networks))
    )


@lru_cache(maxsize=8)
def parse_metrics_networks(
    networks: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse the allow-listed CIDRs; a malformed one is a configuration error."""
    try:
        return tuple(ipaddress.ip_network(network, strict=False) for network in networks)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from exc


def _fetch_timed_snapshot(broker: ManagementClient) -> BrokerSnapshot:
    with BROKER_SNAPSHOT_SECONDS.time():
        return fetch_broker_snapshot(broker)


def _broker_nodes(scrape: FleetScrape) -> Iterator[GaugeMetricFamily]:
    answering = GaugeMetricFamily(
        "agentstats_broker_answering_node",
        "1 for the configured management node that answered this scrape's snapshot, 0 for "
        "the others (all 0 when the snapshot failed).",
        labels=["node"],
    )
    node_up = GaugeMetricFamily(
        "agentstats_broker_node_up",
        "0 while this process remembers the configured management node as down (it "
        "refused, timed out or failed within RABBITMQ_NODE_DOWN_SECONDS), else 1.",
        labels=["node"],
    )
    for node in scrape.broker_nodes:
        answering.add_metric([node], 1 if node == scrape.answered_by else 0)
        node_up.add_metric([node], 0 if node in scrape.broker_nodes_down else 1)
    yield answering
    yield node_up


def _services_by_state(rows: Iterable[AgentRow]) -> GaugeMetricFamily:
    tally = collections.Counter(service.state for row in rows for service in row.services)
    family = GaugeMetricFamily(
        "agentstats_services", "Agent services by reported state.", labels=["state"]
    )
    for state in REPORTED_SERVICE_STATES:
        family.add_metric([state], tally[state])
    return family


def _agents_and_queues(report: ConnectionReport) -> Iterator[GaugeMetricFamily]:
    agents = GaugeMetricFamily(
        "agentstats_agents",
        "Agents by whether they are connected to the broker (the stats' connected rule).",
        labels=["status"],
    )
    agents.add_metric(["connected"], report.summary.connected_agents)
    agents.add_metric(["disconnected"], report.summary.disconnected_agents)
    yield agents

    # Offering names need not be unique, so the uuid keeps the series apart.
    names: dict[UUID, str] = {}
    queues: dict[UUID, dict[tuple[str, str], tuple[int, int]]] = {}
    for agent in report.agents:
        names[agent.row.offering_uuid] = agent.row.offering_name
        per_offering = queues.setdefault(agent.row.offering_uuid, {})
        for queue in agent.queues:
            # A queue on a down node has no known depth: it adds nothing.
            per_offering[(queue.vhost, queue.name)] = (queue.messages or 0, queue.consumers)
    labels = ["offering_uuid", "offering"]
    messages = GaugeMetricFamily(
        "agentstats_queued_messages",
        "Messages waiting in the queues (consumer and legacy) of an offering's agents.",
        labels=labels,
    )
    consumers = GaugeMetricFamily(
        "agentstats_queue_consumers",
        "Consumers reading the queues (consumer and legacy) of an offering's agents.",
        labels=labels,
    )
    for offering_uuid, per_offering in sorted(
        queues.items(), key=lambda item: (names[item[0]], str(item[0]))
    ):
        label_values = [str(offering_uuid), names[offering_uuid]]
        messages.add_metric(label_values, sum(depth for depth, _ in per_offering.values()))
        consumers.add_metric(label_values, sum(count for _, count in per_offering.values()))
    yield messages
    yield consumers


def _has_metrics_token(authorization: str, *, token: str) -> bool:
    if not token:
        return False
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def _is_on_networks(
    remote_addr: str, *, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
