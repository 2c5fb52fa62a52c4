"""Writes of the marketplace: agent registrations and the broker side they need.

Every registration is idempotent (agents repeat them on every start and polling cycle)
and serialised on its parent row, so concurrent repeats converge on one row. Broker
provisioning runs inside the database transaction: if the broker fails, the transaction
rolls back and a retry starts from a clean slate.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, TextField, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError

from agentstats.models import User
from marketplace.models import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    AgentProcessor,
    AgentService,
    AgentServiceState,
    AgentTransport,
    ConnectionEventKind,
    EventSubscription,
    EventSubscriptionQueue,
    ObserverStatus,
    Offering,
)
from rmq.client import ManagementClient
from rmq.events import ConnectionClosed, ConnectionOpened, transport_of
from rmq.provisioning import (
    declare_subscription_queue,
    delete_subscription_user,
    provision_subscription_access,
)
from rmq.snapshot import BrokerConnection


@dataclass(frozen=True)
class AgentIdentityFields:
    """What an agent reports about itself when it registers."""

    name: str
    version: str
    dependencies: list[dict[str, str]]
    config_file_path: str
    config_file_content: str
    last_restarted: datetime | None

    @classmethod
    def from_validated(cls, data: dict[str, Any]) -> "AgentIdentityFields":
        """Build from validated input, normalising nulls to empty values."""
        return cls(
            name=data["name"],
            version=data.get("version") or "",
            dependencies=[
                {"package": item["package"], "version": item["version"]}
                for item in data.get("dependencies") or []
            ],
            config_file_path=data.get("config_file_path") or "",
            config_file_content=data.get("config_file_content") or "",
            last_restarted=data.get("last_restarted"),
        )

    @classmethod
    def from_identity(cls, identity: AgentIdentity) -> "AgentIdentityFields":
        """The fields an identity holds now."""
        return cls(
            name=identity.name,
            version=identity.version,
            dependencies=list(identity.dependencies),
            config_file_path=identity.config_file_path,
            config_file_content=identity.config_file_content,
            last_restarted=identity.last_restarted,
        )

    def merged(self, data: dict[str, Any]) -> "AgentIdentityFields":
        """These fields with the validated keys of a partial update applied."""
        given = AgentIdentityFields.from_validated({"name": self.name, **data})
        return dataclasses.replace(
            self, **{key: getattr(given, key) for key in data if hasattr(given, key)}
        )


def register_agent_identity(
    offering: Offering, *, actor: User, fields: AgentIdentityFields
) -> tuple[AgentIdentity, bool]:
    """Create the agent for (offering, name), or update it when it exists."""
    with transaction.atomic():
        Offering.objects.select_for_update().filter(pk=offering.pk).first()
        identity = AgentIdentity.objects.filter(offering=offering, name=fields.name).first()
        created = identity is None
        if identity is None:
            identity = AgentIdentity(offering=offering, name=fields.name, created_by=actor)
        _apply_identity_fields(identity, fields)
        identity.save()
    return identity, created


def update_agent_identity(
    identity: AgentIdentity, *, offering: Offering, fields: AgentIdentityFields
) -> AgentIdentity:
    """Overwrite an agent's reported fields (PUT); name and offering stay unique."""
    clash = AgentIdentity.objects.filter(offering=offering, name=fields.name).exclude(
        pk=identity.pk
    )
    if clash.exists():
        raise ValidationError({"name": ["This offering already has an agent with this name."]})
    identity.offering = offering
    _apply_identity_fields(identity, fields)
    identity.name = fields.name
    identity.save()
    return identity


def _apply_identity_fields(identity: AgentIdentity, fields: AgentIdentityFields) -> None:
    identity.version = fields.version
    identity.dependencies = fields.dependencies
    identity.config_file_path = fields.config_file_path
    identity.config_file_content = fields.config_file_content
    if fields.last_restarted is not None:
        identity.last_restarted = fields.last_restarted


def register_agent_service(
    identity: AgentIdentity, *, name: str, mode: str
) -> tuple[AgentService, bool]:
    """Get or create the agent's service by name and mark it Active."""
    with transaction.atomic():
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        service, created = AgentService.objects.get_or_create(
            identity=identity, name=name, defaults={"mode": mode}
        )
        service.mode = mode
        service.state = AgentServiceState.ACTIVE
        service.save()
    return service, created


def register_agent_processor(
    service: AgentService, *, name: str, backend_type: str, backend_version: str
) -> tuple[AgentProcessor, bool]:
    """Get or create the service's processor by name and stamp its last run."""
    with transaction.atomic():
        AgentService.objects.select_for_update().filter(pk=service.pk).first()
        processor, created = AgentProcessor.objects.get_or_create(service=service, name=name)
        processor.backend_type = backend_type
        processor.backend_version = backend_version
        processor.last_run = timezone.now()
        processor.save()
    return processor, created


def set_agent_service_statistics(
    service: AgentService, *, statistics: dict[str, Any]
) -> AgentService:
    """Replace the statistics an agent reports for one service."""
    service.statistics = statistics
    service.save(update_fields=["statistics", "modified"])
    return service


def register_event_subscription(
    identity: AgentIdentity,
    *,
    owner: User,
    object_type: str,
    description: str,
    source_ip: str | None,
    broker: ManagementClient,
) -> tuple[EventSubscription, bool]:
    """Get or create the agent's subscription for one object type, with its broker user.

    The broker side (vhost, user, permissions) is provisioned on every call so that a
    broker that lost its state converges on the next registration.
    """
    with transaction.atomic():
        AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        subscription = next(
            (
                candidate
                for candidate in identity.event_subscriptions.select_related("user")
                if object_type in candidate.object_types
            ),
            None,
        )
        created = subscription is None
        if subscription is None:
            subscription = EventSubscription.objects.create(
                user=owner,
                agent_identity=identity,
                observable_objects=[{"object_type": object_type}],
                description=description,
                source_ip=source_ip,
            )
        provision_subscription_access(
            broker,
            vhost=subscription.user.uuid.hex,
            username=subscription.uuid.hex,
            password=Token.objects.get_or_create(user=subscription.user)[0].key,
        )
    return subscription, created


def create_subscription_queue(
    subscription: EventSubscription,
    *,
    offering: Offering,
    object_type: str,
    broker: ManagementClient,
) -> tuple[EventSubscriptionQueue, bool]:
    """Get or create the subscription's queue row and declare the durable queue."""
    with transaction.atomic():
        EventSubscription.objects.select_for_update().filter(pk=subscription.pk).first()
        queue, created = EventSubscriptionQueue.objects.select_related(
            "event_subscription__user", "offering"
        ).get_or_create(event_subscription=subscription, offering=offering, object_type=object_type)
        declare_subscription_queue(broker, vhost=queue.vhost, name=queue.queue_name)
    return queue, created


def delete_event_subscription(subscription: EventSubscription, *, broker: ManagementClient) -> None:
    """Delete a subscription and its broker user; the row stays if the broker fails."""
    with transaction.atomic():
        username = subscription.uuid.hex
        subscription.delete()
        delete_subscription_user(broker, username=username)


def delete_agent_identity(identity: AgentIdentity, *, broker: ManagementClient) -> None:
    """Delete an agent with its services and subscriptions, and their broker users."""
    with transaction.atomic():
        usernames = [sub.uuid.hex for sub in identity.event_subscriptions.all()]
        identity.delete()
        for username in usernames:
            delete_subscription_user(broker, username=username)


# --- connection state: the agent's own calls ---------------------------------------------


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


# --- connection state: what the broker says ---------------------------------------------


def record_connection_opened(event: ConnectionOpened, *, reason: str = "opened") -> bool:
    """Record a broker connection of one of an agent's subscriptions; False if not ours."""
    subscriptions = _find_subscriptions([(event.user, event.vhost)])
    subscription = subscriptions.get((event.user, event.vhost))
    if subscription is None or subscription.agent_identity is None:
        return False
    identity = subscription.agent_identity
    with transaction.atomic():
        _lock_state(identity)
        _, created = AgentBrokerConnection.objects.get_or_create(
            name=event.name,
            defaults={
                "identity": identity,
                "subscription": subscription,
                "node": event.node,
                "peer_host": event.peer_host,
                "transport": transport_of(event.protocol),
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
                transport=transport_of(event.protocol),
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
