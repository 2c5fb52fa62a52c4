"""The agents' live connection side: state, open broker connections, timeline, observer."""

import uuid

from django.db import models

from marketplace.models.agents import AgentIdentity, EventSubscription
from marketplace.models.consumers import EventConsumer
from marketplace.names import AgentTransport, ConnectionEventKind


class AgentConnectionState(models.Model):
    """The agent's live connection state: the single row the connection envelope reads.

    Kept current by the agent's own API calls (last_seen, dispatches, heartbeats) and by
    the connection observer (broker connections, from RabbitMQ's event exchange).
    """

    identity = models.OneToOneField(
        AgentIdentity, on_delete=models.CASCADE, related_name="connection_state"
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    connected_since = models.DateTimeField(null=True, blank=True)
    ws_last_seen = models.DateTimeField(null=True, blank=True)
    owner_pod = models.CharField(max_length=255, blank=True, default="")
    transport = models.CharField(
        max_length=10, choices=AgentTransport.choices(), blank=True, default=""
    )
    last_dispatch_at = models.DateTimeField(null=True, blank=True)
    last_dispatch_failed_at = models.DateTimeField(null=True, blank=True)
    dispatches_succeeded = models.PositiveBigIntegerField(default=0)
    dispatches_failed = models.PositiveBigIntegerField(default=0)
    last_dispatch_error = models.TextField(blank=True, default="")
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identity_id"]

    def __str__(self) -> str:
        return f"connection state of {self.identity_id}"


class AgentBrokerConnection(models.Model):
    """A broker connection that is open now, logged in as one of an agent's subscriptions
    or as its event consumer."""

    name = models.CharField(max_length=255, unique=True)
    identity = models.ForeignKey(
        AgentIdentity, on_delete=models.CASCADE, related_name="broker_connections"
    )
    subscription = models.ForeignKey(
        EventSubscription,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="broker_connections",
    )
    event_consumer = models.ForeignKey(
        EventConsumer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="broker_connections",
    )
    node = models.CharField(max_length=255, blank=True, default="")
    peer_host = models.CharField(max_length=255, blank=True, default="")
    transport = models.CharField(max_length=10, choices=AgentTransport.choices())
    connected_at = models.DateTimeField()
    # When a management-API snapshot last listed it; empty while it is known only from the
    # broker's connection.created event (the management API lists a connection late).
    last_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connected_at", "id"]

    def __str__(self) -> str:
        return self.name


class AgentConnectionEvent(models.Model):
    """One entry of an agent's durable connect/disconnect timeline."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    identity = models.ForeignKey(
        AgentIdentity, on_delete=models.CASCADE, related_name="connection_events"
    )
    kind = models.CharField(max_length=20, choices=ConnectionEventKind.choices())
    occurred_at = models.DateTimeField()
    connection_name = models.CharField(max_length=255)
    subscription_uuid = models.UUIDField(null=True, blank=True)
    event_consumer_uuid = models.UUIDField(null=True, blank=True)
    node = models.CharField(max_length=255, blank=True, default="")
    peer_host = models.CharField(max_length=255, blank=True, default="")
    transport = models.CharField(max_length=10, choices=AgentTransport.choices(), blank=True)
    reason = models.CharField(max_length=100)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["identity", "occurred_at"], name="connection_event_timeline")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.connection_name}"


class ObserverStatus(models.Model):
    """The connection observer's own liveness, its view of the broker, and the lease that
    makes one `observe_connections` process the active one (one row)."""

    name = models.CharField(max_length=50, unique=True, default="default")
    # host:pid:random of the active observer; empty when none holds the lease.
    lease_holder = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_acquired_at = models.DateTimeField(null=True, blank=True)
    last_beat_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    is_broker_available = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "observer status"

    def __str__(self) -> str:
        return self.name
