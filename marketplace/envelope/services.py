"""Writes of an agent's connection state: its own calls (last seen, heartbeats, dispatches)
and what the broker says (connections opened and closed, reconcile, observer beats)."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, TextField, Value, When
from django.db.models.functions import Coalesce, Greatest

from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    EventSubscription,
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


def record_connection_opened(event: ConnectionOpened, *, reason: str = "opened") -> bool:
    """Record a broker connection of one of an agent's subscriptions; False if not ours."""
    subscriptions = _find_subscriptions([(event.user, event.vhost)])
    subscription = subscriptions.get((event.user, event.vhost))
    if subscription is None or subscription.agent_identity is None:
        return False
    identity = subscription.agent_identity
    # A protocol this service does not know is stored as no transport.
    transport = AgentTransport.of_protocol(event.protocol) or ""
    with transaction.atomic():
        _lock_state(identity)
        _, created = AgentBrokerConnection.objects.get_or_create(
            name=event.name,
            defaults={
                "identity": identity,
                "subscription": subscription,
                "node": event.node,
                "peer_host": event.peer_host,
                "transport": transport,
                "connected_at": event.connected_at,
                "last_confirmed_at": event.connected_at,
            },
        )
        if created:
            AgentConnectionEvent.objects.create(
                identity=identity,
                kind=ConnectionEventKind.CONNECTED,
                occurred_at=event.connected_at,
                connection_name=event.name,
                subscription_uuid=subscription.uuid,
                node=event.node,
                peer_host=event.peer_host,
                transport=transport,
                reason=reason,
            )
            _refresh_connection_state(identity, at=event.connected_at)
    return created


def record_connection_closed(event: ConnectionClosed, *, reason: str = "closed") -> bool:
    """Record that a known agent connection closed; False if it was not known."""
    connection = (
        AgentBrokerConnection.objects.select_related("identity", "subscription")
        .filter(name=event.name)
        .first()
    )
    if connection is None:
        return False
    identity = connection.identity
    with transaction.atomic():
        _lock_state(identity)
        deleted, _ = AgentBrokerConnection.objects.filter(pk=connection.pk).delete()
        if deleted:
            AgentConnectionEvent.objects.create(
                identity=identity,
                kind=ConnectionEventKind.DISCONNECTED,
                occurred_at=event.closed_at,
                connection_name=event.name,
                subscription_uuid=connection.subscription.uuid,
                node=event.node or connection.node,
                peer_host=connection.peer_host,
                transport=connection.transport,
                reason=reason,
            )
            _refresh_connection_state(identity, at=event.closed_at)
    return bool(deleted)


def reconcile_broker_connections(connections: Sequence[BrokerConnection], *, at: datetime) -> None:
    """Make the recorded connections equal the broker's: one snapshot, fixed queries."""
    subscriptions = _find_subscriptions([(c.user, c.vhost) for c in connections])
    live = {c.name: c for c in connections if (c.user, c.vhost) in subscriptions}
    known = set(AgentBrokerConnection.objects.values_list("name", flat=True))
    for name in known - set(live):
        record_connection_closed(
            ConnectionClosed(name=name, node="", closed_at=at), reason="gone_at_reconcile"
        )
    for name in set(live) - known:
        broker = live[name]
        record_connection_opened(
            ConnectionOpened(
                name=name,
                user=broker.user,
                vhost=broker.vhost,
                node=broker.node or "",
                peer_host=broker.peer_host or "",
                protocol=broker.protocol or "",
                connected_at=broker.connected_at or at,
            ),
            reason="found_at_reconcile",
        )
    confirmed = AgentBrokerConnection.objects.filter(name__in=list(live))
    confirmed.update(last_confirmed_at=at)
    ws_identities = confirmed.filter(transport=AgentTransport.WEB_STOMP).values("identity_id")
    AgentConnectionState.objects.filter(identity_id__in=ws_identities).update(ws_last_seen=at)


def record_observer_beat(
    *, is_broker_available: bool, error: str = "", is_reconciled: bool = False, at: datetime
) -> None:
    """The observer is alive; say whether it can reach the broker."""
    changes: dict[str, Any] = {
        "last_beat_at": at,
        "is_broker_available": is_broker_available,
        "last_error": error[:500],
    }
    if is_reconciled:
        changes["last_reconciled_at"] = at
    ObserverStatus.objects.update_or_create(name="default", defaults=changes)


def _find_subscriptions(
    users_and_vhosts: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], EventSubscription]:
    """Subscriptions whose uuid hex is the broker user and whose owner's hex is the vhost."""
    ids = {parsed for user, _ in users_and_vhosts if (parsed := _uuid_or_none(user))}
    found = EventSubscription.objects.select_related("user", "agent_identity").filter(uuid__in=ids)
    return {
        (sub.uuid.hex, sub.user.uuid.hex): sub
        for sub in found
        if (sub.uuid.hex, sub.user.uuid.hex) in set(users_and_vhosts)
    }


def _uuid_or_none(value: str) -> uuid.UUID | None:
    if len(value) != 32:
        return None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        return None


def _lock_state(identity: AgentIdentity) -> AgentConnectionState:
    _ensure_connection_state(identity)
    return AgentConnectionState.objects.select_for_update().get(identity=identity)


def _refresh_connection_state(identity: AgentIdentity, *, at: datetime) -> None:
    open_connections = list(identity.broker_connections.order_by("connected_at", "id"))
    if not open_connections:
        # The transport stays as the last one used; no node holds a connection now.
        AgentConnectionState.objects.filter(identity=identity).update(
            connected_since=None, owner_pod=""
        )
        return
    latest = open_connections[-1]
    changes: dict[str, Any] = {
        "connected_since": open_connections[0].connected_at,
        "owner_pod": latest.node,
        "transport": latest.transport,
    }
    if any(conn.transport == AgentTransport.WEB_STOMP for conn in open_connections):
        changes["ws_last_seen"] = at
    AgentConnectionState.objects.filter(identity=identity).update(**changes)
