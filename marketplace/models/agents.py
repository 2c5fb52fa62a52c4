"""Tenants, offerings and the site agents attached to them: identities, services,
processors, legacy event subscriptions and their queues."""

from django.conf import settings
from django.db import models

from marketplace.models.base import TimestampedModel
from marketplace.names import AgentServiceState, ObservableObjectType
from rmq.naming import format_queue_name


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
    # What the agent's processors read from the provider offering: accounting components
    # (upstream's OfferingComponent fields), cluster partitions and plugin options.
    components = models.JSONField(default=list, blank=True)
    partitions = models.JSONField(default=list, blank=True)
    plugin_options = models.JSONField(default=dict, blank=True)

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
    # Which API token is the broker password, as a keyed digest (never the token): see
    # marketplace/registration/broker_credentials.py.
    broker_credential_digest = models.CharField(max_length=64, blank=True, default="")

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
