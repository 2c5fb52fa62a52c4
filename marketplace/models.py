"""The marketplace domain: tenants, offerings and the site agents attached to them."""

import uuid

from django.conf import settings
from django.db import models

from marketplace.names import (
    AgentServiceState,
    AgentTransport,
    ConnectionEventKind,
    ObservableObjectType,
)
from rmq.naming import format_queue_name


class TimestampedModel(models.Model):
    """A row with a public uuid and creation/modification times."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Customer(TimestampedModel):
    """A tenant: the organisation that owns offerings and the agents that serve them."""

    name = models.CharField(max_length=150)
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="owned_customers", blank=True
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Offering(TimestampedModel):
    """A service a customer offers in the marketplace; site agents attach to it."""

    name = models.CharField(max_length=150)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="offerings")
    type = models.CharField(max_length=100, default="Marketplace.Slurm")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AgentIdentity(TimestampedModel):
    """A site agent registered for one offering; re-registering the same name updates it."""

    offering = models.ForeignKey(
        Offering, on_delete=models.CASCADE, related_name="agent_identities"
    )
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=100, blank=True, default="")
    dependencies = models.JSONField(default=list, blank=True)
    config_file_path = models.CharField(max_length=1024, blank=True, default="")
    config_file_content = models.TextField(blank=True, default="")
    last_restarted = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_agent_identities",
    )

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "agent identities"
        constraints = [
            models.UniqueConstraint(
                fields=["offering", "name"], name="agent_identity_unique_offering_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class AgentService(TimestampedModel):
    """A named service an agent runs (order processing, membership sync, ...)."""

    identity = models.ForeignKey(AgentIdentity, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=255)
    mode = models.CharField(max_length=100, blank=True, default="")
    # The default is the plain value, so a migration never has to import the enum.
    state = models.CharField(
        max_length=10, choices=AgentServiceState.choices(), default=AgentServiceState.ACTIVE.value
    )
    statistics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["identity", "name"], name="agent_service_unique_identity_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.identity.name} / {self.name}"


class AgentProcessor(TimestampedModel):
    """A backend processor inside an agent service (e.g. a SLURM backend)."""

    service = models.ForeignKey(AgentService, on_delete=models.CASCADE, related_name="processors")
    name = models.CharField(max_length=255)
    backend_type = models.CharField(max_length=100, blank=True, default="")
    backend_version = models.CharField(max_length=100, blank=True, default="")
    last_run = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name"], name="agent_processor_unique_service_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EventSubscription(TimestampedModel):
    """An agent's subscription to marketplace events; its uuid hex is its RabbitMQ user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="event_subscriptions"
    )
    agent_identity = models.ForeignKey(
        AgentIdentity,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="event_subscriptions",
    )
    observable_objects = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=1000, blank=True, default="")
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.uuid.hex

    @property
    def object_types(self) -> list[str]:
        return [item["object_type"] for item in self.observable_objects if "object_type" in item]


class EventSubscriptionQueue(TimestampedModel):
    """A durable RabbitMQ queue of one subscription for one offering and object type."""

    event_subscription = models.ForeignKey(
        EventSubscription, on_delete=models.CASCADE, related_name="queues"
    )
    offering = models.ForeignKey(
        Offering, on_delete=models.CASCADE, related_name="event_subscription_queues"
    )
    object_type = models.CharField(max_length=50, choices=ObservableObjectType.choices())

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_subscription", "offering", "object_type"],
                name="event_subscription_queue_unique",
            )
        ]

    def __str__(self) -> str:
        return self.queue_name

    @property
    def queue_name(self) -> str:
        return format_queue_name(
            subscription_hex=self.event_subscription.uuid.hex,
            offering_hex=self.offering.uuid.hex,
            object_type=self.object_type,
        )

    @property
    def vhost(self) -> str:
        return self.event_subscription.user.uuid.hex


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
    """A broker connection that is open now, logged in as one of an agent's subscriptions."""

    name = models.CharField(max_length=255, unique=True)
    identity = models.ForeignKey(
        AgentIdentity, on_delete=models.CASCADE, related_name="broker_connections"
    )
    subscription = models.ForeignKey(
        EventSubscription, on_delete=models.CASCADE, related_name="broker_connections"
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
    """The connection observer's own liveness and its view of the broker (one row)."""

    name = models.CharField(max_length=50, unique=True, default="default")
    last_beat_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    is_broker_available = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "observer status"

    def __str__(self) -> str:
        return self.name
