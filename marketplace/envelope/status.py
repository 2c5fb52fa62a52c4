"""How an agent's connection state is judged: pure functions of facts, thresholds and now.

connection_status, in order of the rules:
- unknown: the observer that watches the broker is down (observer_unavailable), the broker
  cannot be reached (broker_unavailable), or a polling agent was never seen (never_seen);
- offline: an event-consuming agent has no broker connection (no_broker_connection), or a
  polling agent has not called the API for AGENT_OFFLINE_AFTER_SECONDS (not_seen_recently);
- degraded: a dispatch failed within AGENT_DEGRADED_WINDOW_SECONDS (recent_dispatch_failure),
  or its connections dropped AGENT_FLAP_THRESHOLD times in 24 h (flapping);
- healthy: reachable and it called the API within AGENT_HEALTHY_SEEN_SECONDS (active);
- online: reachable, but quiet on the API (connected / seen).
The routing status follows: healthy and online are available, degraded is unhealthy,
offline is offline, unknown is unknown. (`busy` is part of the shape; this service has no
signal for it and never reports it.)
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from marketplace.names import ConnectionEventKind, ConnectionStatus, DeploymentMode, RoutingStatus

ROUTING_STATUS = {
    ConnectionStatus.HEALTHY: RoutingStatus.AVAILABLE,
    ConnectionStatus.ONLINE: RoutingStatus.AVAILABLE,
    ConnectionStatus.DEGRADED: RoutingStatus.UNHEALTHY,
    ConnectionStatus.OFFLINE: RoutingStatus.OFFLINE,
    ConnectionStatus.UNKNOWN: RoutingStatus.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    healthy_seen_seconds: float
    offline_after_seconds: float
    degraded_window_seconds: float
    flap_threshold: int
    observer_stale_after_seconds: float


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    # It consumes events over the broker: legacy subscriptions or a unified event consumer.
    has_subscriptions: bool
    live_connections: int
    last_seen: datetime | None
    last_dispatch_failed_at: datetime | None
    flaps_24h: int
    observer_last_beat_at: datetime | None
    is_broker_available: bool


@dataclass(frozen=True, slots=True)
class Judgement:
    deployment_mode: DeploymentMode
    connection_status: ConnectionStatus
    status: RoutingStatus
    status_reason: str


def judge_connection(facts: ConnectionFacts, *, thresholds: Thresholds, now: datetime) -> Judgement:
    """Apply the rules above to one agent."""
    mode = DeploymentMode.CONNECTED if facts.has_subscriptions else DeploymentMode.HOSTED
    connection_status, reason = (
        _judge_connected(facts, thresholds, now)
        if facts.has_subscriptions
        else _judge_hosted(facts, thresholds, now)
    )
    return Judgement(
        deployment_mode=mode,
        connection_status=connection_status,
        status=ROUTING_STATUS[connection_status],
        status_reason=reason,
    )


def _judge_connected(
    facts: ConnectionFacts, t: Thresholds, now: datetime
) -> tuple[ConnectionStatus, str]:
    beat = facts.observer_last_beat_at
    if beat is None or _age(beat, now) > t.observer_stale_after_seconds:
        return ConnectionStatus.UNKNOWN, "observer_unavailable"
    if not facts.is_broker_available:
        return ConnectionStatus.UNKNOWN, "broker_unavailable"
    if facts.live_connections == 0:
        return ConnectionStatus.OFFLINE, "no_broker_connection"
    return _judge_reachable(facts, t, now, quiet="connected")


def _judge_hosted(
    facts: ConnectionFacts, t: Thresholds, now: datetime
) -> tuple[ConnectionStatus, str]:
    if facts.last_seen is None:
        return ConnectionStatus.UNKNOWN, "never_seen"
    if _age(facts.last_seen, now) > t.offline_after_seconds:
        return ConnectionStatus.OFFLINE, "not_seen_recently"
    return _judge_reachable(facts, t, now, quiet="seen")


def _judge_reachable(
    facts: ConnectionFacts, t: Thresholds, now: datetime, *, quiet: str
) -> tuple[ConnectionStatus, str]:
    failed = facts.last_dispatch_failed_at
    if failed is not None and _age(failed, now) <= t.degraded_window_seconds:
        return ConnectionStatus.DEGRADED, "recent_dispatch_failure"
    if facts.flaps_24h >= t.flap_threshold:
        return ConnectionStatus.DEGRADED, "flapping"
    if facts.last_seen is not None and _age(facts.last_seen, now) <= t.healthy_seen_seconds:
        return ConnectionStatus.HEALTHY, "active"
    return ConnectionStatus.ONLINE, quiet


def _age(moment: datetime, now: datetime) -> float:
    return (now - moment).total_seconds()


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """A connection opening or closing, as the timeline records it."""

    connection_name: str
    kind: ConnectionEventKind
    occurred_at: datetime


def measure_uptime(
    events: Sequence[TimelinePoint],
    *,
    open_connections: Iterable[tuple[str, datetime]],
    window_start: datetime,
    now: datetime,
) -> float:
    """Seconds within [window_start, now] during which at least one connection was open."""
    intervals: list[tuple[datetime, datetime]] = []
    opened: dict[str, datetime] = {}
    for point in sorted(events, key=lambda p: p.occurred_at):
        if point.kind == ConnectionEventKind.CONNECTED:
            opened[point.connection_name] = point.occurred_at
        else:
            start = opened.pop(point.connection_name, window_start)
            intervals.append((start, point.occurred_at))
    for name, connected_at in open_connections:
        intervals.append((opened.pop(name, connected_at), now))
    return _union_seconds(intervals, window_start=window_start, now=now)


def _union_seconds(
    intervals: Iterable[tuple[datetime, datetime]], *, window_start: datetime, now: datetime
) -> float:
    clipped = sorted(
        (max(start, window_start), min(end, now))
        for start, end in intervals
        if end > window_start and start < now
    )
    total = timedelta()
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in clipped:
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None and current_end is not None:
        total += current_end - current_start
    return total.total_seconds()
