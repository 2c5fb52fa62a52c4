"""Writes of an agent's connection state: its own calls (last seen, heartbeats, dispatches)
and what the broker says (connections opened and closed, reconcile), and the observer's
own row (its beats and the lease that makes one observer process the active one)."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, TextField, Value, When
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce, Greatest, Now

from marketplace.envelope.logins import AgentLogin, find_agent_logins
from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    ObserverStatus,
)
from marketplace.names import AgentTransport, ConnectionEventKind
from rmq.events import ConnectionClosed, ConnectionOpened
from rmq.types import BrokerConnection


def touch_agent_last_seen(identity: AgentIdentity, *, at: datetime) -> None:
    """Note that the agent called the API (every authenticated agent call does)."""
    _ensure_connection_state(identity)
    AgentConnectionState.objects.filter(identity=identity).update(
        last_seen=_latest_of("last_seen", at)
    )


def record_agent_heartbeat(identity: AgentIdentity, *, at: datetime) -> None:
    """The agent says it is alive."""
    _ensure_connection_state(identity)
    AgentConnectionState.objects.filter(identity=identity).update(
        last_heartbeat_at=_latest_of("last_heartbeat_at", at), last_seen=_latest_of("last_seen", at)
    )


def record_agent_dispatch(
    identity: AgentIdentity, *, is_success: bool, error: str, at: datetime, seen_at: datetime
) -> None:
    """Count one dispatch outcome atomically in the database (no read-modify-write).

    `at` is when the dispatch happened (an agent may report late); `seen_at` is when the
    agent called. Times only move forward, and the error kept is the latest failure's.
    """
    _ensure_connection_state(identity)
    if is_success:
        changes: dict[str, Any] = {"dispatches_succeeded": F("dispatches_succeeded") + 1}
    else:
        is_latest_failure = Q(last_dispatch_failed_at__isnull=True) | Q(
            last_dispatch_failed_at__lte=at
        )
        changes = {
            "dispatches_failed": F("dispatches_failed") + 1,
            "last_dispatch_failed_at": _latest_of("last_dispatch_failed_at", at),
            "last_dispatch_error": Case(
                When(is_latest_failure, then=Value(error)),
                default=F("last_dispatch_error"),
                output_field=TextField(),
            ),
        }
    AgentConnectionState.objects.filter(identity=identity).update(
        last_dispatch_at=_latest_of("last_dispatch_at", at),
        last_seen=_latest_of("last_seen", seen_at),
        **changes,
    )


def _latest_of(field: str, at: datetime) -> Greatest:
    moment = Value(at, output_field=DateTimeField())
    return Greatest(Coalesce(F(field), moment), moment)


def _ensure_connection_state(identity: AgentIdentity) -> None:
    if AgentConnectionState.objects.filter(identity=identity).exists():
        return
    try:
        with transaction.atomic():
            AgentConnectionState.objects.create(identity=identity)
    except IntegrityError:
        return  # a concurrent call created it


@dataclass(frozen=True, slots=True)
class _Opening:
    """A connection to record as open, with the timeline event that says so."""

    name: str
    login: AgentLogin
    node: str
    peer_host: str
    transport: str
    connected_at: datetime
    last_confirmed_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Closing:
    """A recorded connection to drop, with the timeline event that says so."""

    name: str
    node: str
    closed_at: datetime
    reason: str


def record_connection_opened(event: ConnectionOpened, *, reason: str = "opened") -> bool:
    """Record a broker connection of an agent (logged in as one of its subscriptions or as
    its event consumer); False if not ours."""
    login = find_agent_logins([(event.user, event.vhost)]).get((event.user, event.vhost))
    if login is None:
        return False
    opening = _Opening(
        name=event.name,
        login=login,
        node=event.node,
        peer_host=event.peer_host,
        transport=AgentTransport.of_protocol(event.protocol) or "",
        connected_at=event.connected_at,
        last_confirmed_at=None,
        reason=reason,
    )
    opened, _ = _apply_connection_changes([opening], [])
    return event.name in opened


def record_connection_closed(event: ConnectionClosed, *, reason: str = "closed") -> bool:
    """Record that a known agent connection closed; False if it was not known."""
    closing = _Closing(name=event.name, node=event.node, closed_at=event.closed_at, reason=reason)
    _, closed = _apply_connection_changes([], [closing])
    return event.name in closed


def reconcile_broker_connections(connections: Sequence[BrokerConnection], *, at: datetime) -> None:
    """Make the recorded connections equal the broker's: one snapshot, fixed queries.

    The management API lists a new connection seconds after the broker announced it, so
    a connection recorded from that announcement and never listed yet is closed only
    once OBSERVER_RECONCILE_GRACE_SECONDS have passed since it connected.
    """
    logins = find_agent_logins([(c.user, c.vhost) for c in connections])
    live = {c.name: c for c in connections if (c.user, c.vhost) in logins}
    grace_start = at - timedelta(seconds=settings.OBSERVER_RECONCILE_GRACE_SECONDS)
    recorded = list(
        AgentBrokerConnection.objects.values_list("name", "connected_at", "last_confirmed_at")
    )
    closings = [
        _Closing(name=name, node="", closed_at=at, reason="gone_at_reconcile")
        for name, connected_at, last_confirmed_at in recorded
        if name not in live and (last_confirmed_at is not None or connected_at <= grace_start)
    ]
    known = {name for name, _, _ in recorded}
    openings = []
    for name, broker in live.items():
        if name in known:
            continue
        openings.append(
            _Opening(
                name=name,
                login=logins[(broker.user, broker.vhost)],
                node=broker.node or "",
                peer_host=broker.peer_host or "",
                transport=AgentTransport.of_protocol(broker.protocol) or "",
                connected_at=broker.connected_at or at,
                last_confirmed_at=at,
                reason="found_at_reconcile",
            )
        )
    _apply_connection_changes(openings, closings)
    confirmed = AgentBrokerConnection.objects.filter(name__in=list(live))
    confirmed.update(last_confirmed_at=at)
    ws_identities = confirmed.filter(transport=AgentTransport.WEB_STOMP).values("identity_id")
    AgentConnectionState.objects.filter(identity_id__in=ws_identities).update(ws_last_seen=at)


def _apply_connection_changes(
    openings: Sequence[_Opening], closings: Sequence[_Closing]
) -> tuple[set[str], set[str]]:
    """Record connections opened and closed, their timeline and each agent's state.

    A fixed number of queries, however many connections and agents change. The states of
    the agents concerned are locked first, so a concurrent writer of the same agent's
    connections waits; returns the names actually opened and actually closed.
    """
    identity_ids = {opening.login.identity_id for opening in openings}
    if closings:
        identity_ids.update(
            AgentBrokerConnection.objects.filter(
                name__in=[closing.name for closing in closings]
            ).values_list("identity_id", flat=True)
        )
    if not identity_ids:
        return set(), set()
    with transaction.atomic():
        states = _lock_states(identity_ids)
        current = {
            conn.name: conn
            for conn in AgentBrokerConnection.objects.select_related(
                "subscription", "event_consumer"
            ).filter(Q(identity_id__in=identity_ids) | Q(name__in=[o.name for o in openings]))
        }
        opened = [o for o in openings if o.name not in current]
        closed = [(c, current[c.name]) for c in closings if c.name in current]
        AgentBrokerConnection.objects.filter(name__in=[c.name for c, _ in closed]).delete()
        AgentBrokerConnection.objects.bulk_create(
            [_connection_of(opening) for opening in opened], ignore_conflicts=True
        )
        AgentConnectionEvent.objects.bulk_create(
            [_opened_event(opening) for opening in opened]
            + [_closed_event(closing, row) for closing, row in closed]
        )
        changed_at: dict[int, datetime] = {}
        for opening in opened:
            _note_latest(changed_at, opening.login.identity_id, opening.connected_at)
        for closing, row in closed:
            _note_latest(changed_at, row.identity_id, closing.closed_at)
        _refresh_connection_states(
            [states[pk] for pk in changed_at if pk in states], changed_at=changed_at
        )
    return {o.name for o in opened}, {c.name for c, _ in closed}


def _connection_of(opening: _Opening) -> AgentBrokerConnection:
    return AgentBrokerConnection(
        name=opening.name,
        identity_id=opening.login.identity_id,
        subscription=opening.login.subscription,
        event_consumer=opening.login.event_consumer,
        node=opening.node,
        peer_host=opening.peer_host,
        transport=opening.transport,
        connected_at=opening.connected_at,
        last_confirmed_at=opening.last_confirmed_at,
    )


def _opened_event(opening: _Opening) -> AgentConnectionEvent:
    subscription, consumer = opening.login.subscription, opening.login.event_consumer
    return AgentConnectionEvent(
        identity_id=opening.login.identity_id,
        kind=ConnectionEventKind.CONNECTED,
        occurred_at=opening.connected_at,
        connection_name=opening.name,
        subscription_uuid=subscription.uuid if subscription else None,
        event_consumer_uuid=consumer.uuid if consumer else None,
        node=opening.node,
        peer_host=opening.peer_host,
        transport=opening.transport,
        reason=opening.reason,
    )


def _closed_event(closing: _Closing, row: AgentBrokerConnection) -> AgentConnectionEvent:
    return AgentConnectionEvent(
        identity_id=row.identity_id,
        kind=ConnectionEventKind.DISCONNECTED,
        occurred_at=closing.closed_at,
        connection_name=closing.name,
        subscription_uuid=row.subscription.uuid if row.subscription else None,
        event_consumer_uuid=row.event_consumer.uuid if row.event_consumer else None,
        node=closing.node or row.node,
        peer_host=row.peer_host,
        transport=row.transport,
        reason=closing.reason,
    )


def _note_latest(moments: dict[int, datetime], key: int, moment: datetime) -> None:
    if key not in moments or moment > moments[key]:
        moments[key] = moment


OBSERVER_ROW = "default"


class ObserverLeaseLost(Exception):
    """This process no longer holds the observer lease (another took or released it)."""


def _lease_end() -> CombinedExpression:
    """The end of a lease taken or renewed now, by the database's clock."""
    return CombinedExpression(
        Now(),
        "+",
        Value(timedelta(seconds=settings.OBSERVER_LEASE_SECONDS)),
        output_field=DateTimeField(),
    )


def acquire_observer_lease(holder: str) -> bool:
    """Take the observer lease if nobody holds it, its holder let it expire, or `holder`
    has it already; True when `holder` holds it now.

    A compare-and-set: the UPDATE matches only a free or expired lease, and the database
    re-checks that condition on the row it locks, so of two contenders only one wins.
    Expiry is judged by the database's clock, the one every lease was written with, so
    a host whose clock runs ahead cannot take a live lease.
    """
    ObserverStatus.objects.get_or_create(name=OBSERVER_ROW)
    is_free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())
    taken = (
        ObserverStatus.objects.filter(name=OBSERVER_ROW)
        .filter(is_free | Q(lease_holder=holder))
        .update(lease_holder=holder, lease_expires_at=_lease_end(), lease_acquired_at=Now())
    )
    return taken == 1


def record_observer_beat(
    *,
    holder: str,
    is_broker_available: bool,
    error: str = "",
    is_reconciled: bool = False,
    at: datetime,
) -> None:
    """The active observer is alive: say whether it can reach the broker and renew its
    lease (to the database's clock + OBSERVER_LEASE_SECONDS), in one UPDATE conditional
    on `holder` still holding it; `at` is the beat's time as the envelopes read it.

    Raises ObserverLeaseLost (writing nothing) when another process holds the lease.
    """
    changes: dict[str, Any] = {
        "last_beat_at": at,
        "is_broker_available": is_broker_available,
        "last_error": error[:500],
        "lease_expires_at": _lease_end(),
    }
    if is_reconciled:
        changes["last_reconciled_at"] = at
    renewed = ObserverStatus.objects.filter(name=OBSERVER_ROW, lease_holder=holder).update(
        **changes
    )
    if not renewed:
        raise ObserverLeaseLost(f"{holder} no longer holds the observer lease")


def release_observer_lease(holder: str) -> None:
    """Give the lease up (a clean stop), so a standby takes over at its next poll."""
    ObserverStatus.objects.filter(name=OBSERVER_ROW, lease_holder=holder).update(
        lease_holder="", lease_expires_at=None, lease_acquired_at=None
    )


def _lock_states(identity_ids: set[int]) -> dict[int, AgentConnectionState]:
    """Create the agents' state rows that are missing, then lock them all, in pk order."""
    AgentConnectionState.objects.bulk_create(
        [AgentConnectionState(identity_id=pk) for pk in sorted(identity_ids)],
        ignore_conflicts=True,
    )
    locked = (
        AgentConnectionState.objects.select_for_update()
        .filter(identity_id__in=identity_ids)
        .order_by("identity_id")
    )
    return {state.identity_id: state for state in locked}


def _refresh_connection_states(
    states: Sequence[AgentConnectionState], *, changed_at: Mapping[int, datetime]
) -> None:
    """Derive connected_since, owner_pod, transport and ws_last_seen from the open
    connections, for locked states, in two queries."""
    if not states:
        return
    open_by_identity: dict[int, list[AgentBrokerConnection]] = defaultdict(list)
    for conn in AgentBrokerConnection.objects.filter(
        identity_id__in=[state.identity_id for state in states]
    ).order_by("connected_at", "id"):
        open_by_identity[conn.identity_id].append(conn)
    for state in states:
        open_connections = open_by_identity[state.identity_id]
        if not open_connections:
            # The transport stays as the last one used; no node holds a connection now.
            state.connected_since, state.owner_pod = None, ""
            continue
        latest = open_connections[-1]
        state.connected_since = open_connections[0].connected_at
        state.owner_pod = latest.node
        state.transport = latest.transport
        if any(conn.transport == AgentTransport.WEB_STOMP for conn in open_connections):
            state.ws_last_seen = changed_at[state.identity_id]
    AgentConnectionState.objects.bulk_update(
        states, ["connected_since", "owner_pod", "transport", "ws_last_seen"]
    )
