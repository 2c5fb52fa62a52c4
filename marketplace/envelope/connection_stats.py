"""Fleet totals of the connection envelope, in Svantic's `get_connection_stats` shape.

Each agent is judged exactly as its envelope is (the same facts, thresholds and rules),
so the totals always add up to the envelopes of the same agents. The facts of every agent
come in one query (counts and flags as subqueries) and the observer's row in a second,
whatever the fleet size.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from marketplace.envelope.selectors import (
    WINDOW,
    build_connection_facts,
    choose_transport_detail,
    current_thresholds,
    find_observer_status,
)
from marketplace.envelope.status import judge_connection
from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    EventConsumer,
    EventSubscription,
)
from marketplace.names import (
    AGENT_TYPE,
    AgentTransport,
    ConnectionEventKind,
    ConnectionStatus,
    DeploymentMode,
    EnvelopeTransport,
)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """Agents counted by deployment mode, connection status and transport; every member
    of each set is a key, zeros included, in the set's declaration order."""

    total: int
    by_deployment_mode: dict[str, int]
    by_status: dict[str, int]
    by_transport: dict[str, int]
    by_transport_detail: dict[str, int]


def narrow_to_agent_type(
    identities: QuerySet[AgentIdentity], agent_type: str | None
) -> QuerySet[AgentIdentity]:
    """Only the agents of one agent_type: every agent here is a site agent, so any other
    type counts none (a Svantic fleet name is a filter, not an error)."""
    if agent_type is None or agent_type == AGENT_TYPE:
        return identities
    return identities.none()


def count_connection_stats(
    identities: QuerySet[AgentIdentity], *, now: datetime
) -> ConnectionStats:
    """Judge every agent of `identities` as its envelope does, and count (2 queries)."""
    # Each agent's open connections, its disconnects in the last 24 h and whether it
    # consumes events, as columns of its row; the pk keeps agents with equal facts apart
    # under the scope's DISTINCT.
    agent = OuterRef("pk")
    disconnects = AgentConnectionEvent.objects.filter(
        identity=agent, kind=ConnectionEventKind.DISCONNECTED, occurred_at__gte=now - WINDOW
    )
    rows = list(
        identities.annotate(
            live_connections=_count_rows(AgentBrokerConnection.objects.filter(identity=agent)),
            recent_disconnects=_count_rows(disconnects),
            has_legacy_subscription=Exists(EventSubscription.objects.filter(agent_identity=agent)),
            has_event_consumer=Exists(EventConsumer.objects.filter(identity=agent)),
        ).values_list(
            "pk",
            "connection_state__last_seen",
            "connection_state__last_dispatch_failed_at",
            "connection_state__transport",
            "live_connections",
            "recent_disconnects",
            "has_legacy_subscription",
            "has_event_consumer",
        )
    )
    observer = find_observer_status()
    thresholds = current_thresholds()
    modes: Counter[str] = Counter(dict.fromkeys(DeploymentMode.values(), 0))
    statuses: Counter[str] = Counter(dict.fromkeys(ConnectionStatus.values(), 0))
    transports: Counter[str] = Counter(dict.fromkeys(EnvelopeTransport.values(), 0))
    details: Counter[str] = Counter(dict.fromkeys(AgentTransport.values(), 0))
    for _pk, last_seen, failed_at, last_transport, live, flaps, legacy, consumer in rows:
        state = AgentConnectionState(
            last_seen=last_seen, last_dispatch_failed_at=failed_at, transport=last_transport or ""
        )
        has_subscriptions = legacy or consumer
        facts = build_connection_facts(
            state,
            has_subscriptions=has_subscriptions,
            live_connections=live,
            flaps=flaps,
            observer=observer,
        )
        judgement = judge_connection(facts, thresholds=thresholds, now=now)
        modes[judgement.deployment_mode] += 1
        statuses[judgement.connection_status] += 1
        transports[EnvelopeTransport.of_mode(judgement.deployment_mode)] += 1
        # Without the open connections at hand: the transport it last used, which the
        # observer keeps on the state row (the envelope's rule when it has none open).
        details[
            choose_transport_detail(state, has_subscriptions=has_subscriptions, open_connections=[])
        ] += 1
    return ConnectionStats(
        total=len(rows),
        by_deployment_mode=dict(modes),
        by_status=dict(statuses),
        by_transport=dict(transports),
        by_transport_detail=dict(details),
    )


def _count_rows(rows: QuerySet) -> Coalesce:
    """The number of `rows` (one agent's, through OuterRef) as a scalar subquery."""
    counted = rows.order_by().values("identity").annotate(count=Count("pk")).values("count")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)
