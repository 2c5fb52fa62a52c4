"""Reads of the per-agent connection envelope: one shape whatever the transport.

Everything comes from the database (the observer and the agents' own calls keep it
current), so the envelope is served even while the broker is down.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery

from agentstats.models import User
from marketplace.access import restrict_to_visible_identities
from marketplace.envelope.status import (
    ConnectionFacts,
    Judgement,
    Thresholds,
    TimelinePoint,
    judge_connection,
    measure_uptime,
)
from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    AgentLog,
    EventConsumer,
    EventSubscription,
    ObserverStatus,
)
from marketplace.names import (
    ALERTING_LOG_LEVELS,
    AgentTransport,
    ConnectionEventKind,
    EnvelopeTransport,
)

WINDOW = timedelta(hours=24)


def current_thresholds() -> Thresholds:
    """The thresholds in force, from settings."""
    return Thresholds(
        healthy_seen_seconds=settings.AGENT_HEALTHY_SEEN_SECONDS,
        offline_after_seconds=settings.AGENT_OFFLINE_AFTER_SECONDS,
        degraded_window_seconds=settings.AGENT_DEGRADED_WINDOW_SECONDS,
        flap_threshold=settings.AGENT_FLAP_THRESHOLD,
        observer_stale_after_seconds=settings.OBSERVER_STALE_AFTER_SECONDS,
    )


@dataclass(frozen=True, slots=True)
class LastErrorLog:
    """The latest log line an agent shipped at an alerting level (ERROR, CRITICAL)."""

    at: datetime
    level: str
    message: str
    module: str


@dataclass(frozen=True)
class ConnectionEnvelope:
    identity: AgentIdentity
    state: AgentConnectionState
    judgement: Judgement
    # How it gets events in our terms (ws, stomp, amqp, polling); `transport` is Svantic's.
    transport_detail: str
    open_connections: int
    flaps_24h: int
    uptime_24h_seconds: float
    thresholds: Thresholds
    last_error_log: LastErrorLog | None = None

    @property
    def transport(self) -> EnvelopeTransport:
        """Svantic's transport: ws when connected, callback when hosted."""
        return EnvelopeTransport.of_mode(self.judgement.deployment_mode)

    @property
    def ws_mesh_pod_id(self) -> str | None:
        """The node of its open WebSocket connection; None when it has none."""
        if self.open_connections == 0 or self.transport_detail != AgentTransport.WEB_STOMP:
            return None
        return self.state.owner_pod or None


def list_scoped_identities(user: User, *, tenant_uuid: UUID | None) -> QuerySet[AgentIdentity]:
    """Agents the user may see (staff/support: all; others: their customers' and their
    own), narrowed to one tenant (customer) when asked."""
    queryset = restrict_to_visible_identities(
        AgentIdentity.objects.select_related("offering__customer"), user
    )
    if tenant_uuid is not None:
        queryset = queryset.filter(offering__customer__uuid=tenant_uuid)
    return queryset


def build_connection_envelope(identity: AgentIdentity, *, now: datetime) -> ConnectionEnvelope:
    """The envelope of one agent (a fixed handful of queries)."""
    state = AgentConnectionState.objects.filter(identity=identity).first() or AgentConnectionState(
        identity=identity
    )
    open_connections = list(AgentBrokerConnection.objects.filter(identity=identity))
    events = list(
        AgentConnectionEvent.objects.filter(identity=identity, occurred_at__gte=now - WINDOW)
    )
    flaps = sum(1 for event in events if event.kind == ConnectionEventKind.DISCONNECTED)
    has_subscriptions = identity.pk in _list_event_consuming([identity.pk])
    judgement = judge_connection(
        build_connection_facts(
            state,
            has_subscriptions=has_subscriptions,
            live_connections=len(open_connections),
            flaps=flaps,
            observer=find_observer_status(),
        ),
        thresholds=current_thresholds(),
        now=now,
    )
    uptime = measure_uptime(
        [
            TimelinePoint(e.connection_name, ConnectionEventKind(e.kind), e.occurred_at)
            for e in events
        ],
        open_connections=[(c.name, c.connected_at) for c in open_connections],
        window_start=now - WINDOW,
        now=now,
    )
    return ConnectionEnvelope(
        identity=identity,
        state=state,
        judgement=judgement,
        transport_detail=choose_transport_detail(
            state, has_subscriptions=has_subscriptions, open_connections=open_connections
        ),
        open_connections=len(open_connections),
        flaps_24h=flaps,
        uptime_24h_seconds=uptime,
        thresholds=current_thresholds(),
        last_error_log=find_last_error_logs([identity.uuid]).get(identity.uuid),
    )


def find_last_error_logs(identity_uuids: Iterable[UUID]) -> dict[UUID, LastErrorLog]:
    """Each agent's latest ERROR or CRITICAL log line, by agent uuid, in one query."""
    alerting = AgentLog.objects.filter(level__in=ALERTING_LOG_LEVELS)
    latest = alerting.filter(identity_id=OuterRef("pk")).order_by("-timestamp", "-id")
    chosen = AgentIdentity.objects.filter(uuid__in=list(identity_uuids)).annotate(
        latest_id=Subquery(latest.values("id")[:1])
    )
    rows = AgentLog.objects.filter(id__in=chosen.values("latest_id")).values_list(
        "identity__uuid", "timestamp", "level", "message", "module"
    )
    return {
        identity_uuid: LastErrorLog(at=at, level=level, message=message, module=module)
        for identity_uuid, at, level, message, module in rows
    }


def list_connection_events(identity: AgentIdentity) -> QuerySet[AgentConnectionEvent]:
    """The agent's timeline, newest first."""
    return AgentConnectionEvent.objects.filter(identity=identity).order_by("-occurred_at", "-id")


def build_connection_facts(
    state: AgentConnectionState,
    *,
    has_subscriptions: bool,
    live_connections: int,
    flaps: int,
    observer: ObserverStatus | None,
) -> ConnectionFacts:
    """The facts the status judgement needs, from the rows that hold them."""
    return ConnectionFacts(
        has_subscriptions=has_subscriptions,
        live_connections=live_connections,
        last_seen=state.last_seen,
        last_dispatch_failed_at=state.last_dispatch_failed_at,
        flaps_24h=flaps,
        observer_last_beat_at=observer.last_beat_at if observer else None,
        is_broker_available=bool(observer and observer.is_broker_available),
    )


def _list_event_consuming(identity_ids: Iterable[int]) -> set[int]:
    """The agents that consume events over the broker: through a legacy subscription or
    their unified event consumer (one query)."""
    ids = list(identity_ids)
    # Unordered: SQLite refuses ORDER BY (the models' default) inside a UNION.
    legacy = (
        EventSubscription.objects.filter(agent_identity_id__in=ids)
        .order_by()
        .values_list("agent_identity_id", flat=True)
    )
    unified = (
        EventConsumer.objects.filter(identity_id__in=ids)
        .order_by()
        .values_list("identity_id", flat=True)
    )
    return {pk for pk in legacy.union(unified) if pk is not None}


def find_observer_status() -> ObserverStatus | None:
    """The connection observer's row (its last beat and view of the broker), if it ran."""
    return ObserverStatus.objects.filter(name="default").first()


def choose_transport_detail(
    state: AgentConnectionState,
    *,
    has_subscriptions: bool,
    open_connections: list[AgentBrokerConnection],
) -> str:
    """How the agent gets its events: polling, or the protocol of its latest connection."""
    if not has_subscriptions:
        return AgentTransport.POLLING
    if open_connections:
        return max(open_connections, key=lambda conn: conn.connected_at).transport
    # Not connected now: the transport it last used; the real agent uses WebSocket.
    return state.transport or AgentTransport.WEB_STOMP
