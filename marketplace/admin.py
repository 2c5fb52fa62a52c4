"""Admin pages for customers, offerings and site agents.

What an agent reports about itself (version, dependencies, config, restarts, service
states, statistics, its event consumer) is read-only here: the agent is its source of
truth. Deleting an agent, its event consumer, a subscription or a queue removes their
broker side too (users, queues, the owner's vhost once unused); if the broker cannot be
asked, nothing is deleted. Deleting a customer, an offering or a user deletes rows only:
the broker reconcile removes what they leave (reconcile_broker).
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from marketplace.models import (
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    AgentLog,
    AgentProcessor,
    AgentService,
    Customer,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
    JobRun,
    ObserverStatus,
    Offering,
)
from marketplace.registration.consumers import delete_event_consumer
from marketplace.registration.services import delete_agent_identity, delete_event_subscription
from marketplace.registration.teardown import delete_subscription_queue
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError


class BrokerBackedDeleteAdmin(admin.ModelAdmin):
    """Deletes one row at a time through its service, which removes its broker side too.

    There is no bulk delete (each row needs the broker); a broker failure keeps the row
    and says so instead of reporting a deletion.
    """

    def delete_with_broker(self, obj: Any, *, broker: ManagementClient) -> None:
        raise NotImplementedError

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        try:
            self.delete_with_broker(obj, broker=ManagementClient.from_settings())
        except BrokerError as exc:
            self.message_user(
                request, f"Nothing was deleted: the broker cannot be asked ({exc}).", messages.ERROR
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: int) -> HttpResponse:
        if self.model._default_manager.filter(pk=obj_id).exists():
            meta = self.model._meta
            change_url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj_id])
            return HttpResponseRedirect(change_url)
        return super().response_delete(request, obj_display, obj_id)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "uuid", "created")
    search_fields = ("name", "uuid")
    filter_horizontal = ("owners",)
    readonly_fields = ("uuid", "created", "modified")


@admin.register(Offering)
class OfferingAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "type", "uuid")
    list_filter = ("type", "customer")
    search_fields = ("name", "uuid", "customer__name")
    list_select_related = ("customer",)
    readonly_fields = ("uuid", "created", "modified")


class AgentServiceInline(admin.TabularInline):
    model = AgentService
    extra = 0
    fields = ("name", "mode", "state", "modified")
    readonly_fields = ("name", "mode", "state", "modified")
    show_change_link = True


class EventSubscriptionInline(admin.TabularInline):
    model = EventSubscription
    extra = 0
    can_delete = False  # delete on its own page, which removes its broker side too
    fields = ("uuid", "user", "observable_objects", "description", "source_ip", "created")
    readonly_fields = fields
    show_change_link = True


class EventConsumerInline(admin.StackedInline):
    """The agent's unified event queue, if it registered one (delete it on its own page)."""

    model = EventConsumer
    extra = 0
    max_num = 1
    can_delete = False
    fields = (
        "user",
        "rmq_username",
        "queue_name",
        "vhost",
        "object_types",
        "auth_kind",
        "authorized_via",
        "created",
        "modified",
    )
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AgentIdentity)
class AgentIdentityAdmin(BrokerBackedDeleteAdmin):
    list_display = ("name", "offering", "version", "last_restarted", "created_by", "modified")
    list_filter = ("offering__customer", "offering", "version")
    search_fields = ("name", "uuid", "offering__name", "offering__customer__name")
    list_select_related = ("offering", "created_by")
    readonly_fields = (
        "uuid",
        "version",
        "dependencies",
        "config_file_path",
        "config_file_content",
        "last_restarted",
        "created",
        "modified",
    )
    inlines = (AgentServiceInline, EventConsumerInline, EventSubscriptionInline)

    def delete_with_broker(self, obj: AgentIdentity, *, broker: ManagementClient) -> None:
        delete_agent_identity(obj, broker=broker)


@admin.register(EventConsumer)
class EventConsumerAdmin(BrokerBackedDeleteAdmin):
    """Agents' unified event queues: who registered each, how, and its broker names."""

    list_display = (
        "identity",
        "user",
        "rmq_username",
        "object_types_display",
        "auth_kind",
        "authorized_via",
        "created",
    )
    list_filter = ("auth_kind", "authorized_via", "identity__offering")
    search_fields = ("uuid", "rmq_username", "identity__name", "user__username")
    list_select_related = ("identity", "user")
    fields = (
        "uuid",
        "identity",
        "user",
        "rmq_username",
        "queue_name",
        "vhost",
        "object_types",
        "auth_kind",
        "auth_token_prefix",
        "auth_token_name",
        "authorized_via",
        "created",
        "modified",
    )
    readonly_fields = fields

    @admin.display(description="object types")
    def object_types_display(self, obj: EventConsumer) -> str:
        return ", ".join(obj.object_types) or "all"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_with_broker(self, obj: EventConsumer, *, broker: ManagementClient) -> None:
        delete_event_consumer(obj, broker=broker)


class AgentProcessorInline(admin.TabularInline):
    model = AgentProcessor
    extra = 0
    fields = ("name", "backend_type", "backend_version", "last_run")
    readonly_fields = fields


@admin.register(AgentService)
class AgentServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "identity", "mode", "state", "modified")
    list_filter = ("state", "mode", "identity__offering")
    search_fields = ("name", "uuid", "identity__name")
    list_select_related = ("identity",)
    readonly_fields = ("uuid", "state", "statistics", "created", "modified")
    inlines = (AgentProcessorInline,)


@admin.register(AgentProcessor)
class AgentProcessorAdmin(admin.ModelAdmin):
    list_display = ("name", "service", "backend_type", "backend_version", "last_run")
    list_filter = ("backend_type",)
    search_fields = ("name", "uuid", "service__name", "service__identity__name")
    list_select_related = ("service", "service__identity")
    readonly_fields = ("uuid", "backend_type", "backend_version", "last_run", "created", "modified")


class EventSubscriptionQueueInline(admin.TabularInline):
    model = EventSubscriptionQueue
    extra = 0
    can_delete = False  # delete on its own page, which removes the broker queue too
    fields = ("offering", "object_type", "created")
    readonly_fields = fields


@admin.register(EventSubscription)
class EventSubscriptionAdmin(BrokerBackedDeleteAdmin):
    list_display = ("uuid", "agent_identity", "user", "description", "source_ip", "created")
    list_filter = ("agent_identity__offering",)
    search_fields = ("uuid", "description", "user__username", "agent_identity__name")
    list_select_related = ("agent_identity", "user")
    readonly_fields = ("uuid", "observable_objects", "source_ip", "created", "modified")
    inlines = (EventSubscriptionQueueInline,)

    def delete_with_broker(self, obj: EventSubscription, *, broker: ManagementClient) -> None:
        delete_event_subscription(obj, broker=broker)


@admin.register(EventSubscriptionQueue)
class EventSubscriptionQueueAdmin(BrokerBackedDeleteAdmin):
    list_display = ("__str__", "event_subscription", "offering", "object_type", "created")
    list_filter = ("object_type", "offering")
    search_fields = ("uuid", "event_subscription__uuid", "offering__name")
    list_select_related = ("event_subscription", "offering")
    readonly_fields = ("uuid", "created", "modified")

    def delete_with_broker(self, obj: EventSubscriptionQueue, *, broker: ManagementClient) -> None:
        delete_subscription_queue(obj, broker=broker)


@admin.register(AgentConnectionEvent)
class AgentConnectionEventAdmin(admin.ModelAdmin):
    """The agents' connect/disconnect timeline (filter by agent for one agent's)."""

    list_display = (
        "occurred_at",
        "identity",
        "kind",
        "reason",
        "transport",
        "peer_host",
        "node",
        "connection_name",
    )
    list_filter = ("kind", "reason", "transport", "identity__offering")
    search_fields = ("identity__name", "connection_name", "peer_host")
    list_select_related = ("identity",)
    date_hierarchy = "occurred_at"
    readonly_fields = (
        "uuid",
        "identity",
        "kind",
        "occurred_at",
        "connection_name",
        "subscription_uuid",
        "event_consumer_uuid",
        "node",
        "peer_host",
        "transport",
        "reason",
        "recorded_at",
    )

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # One agent's timeline: the fleet dashboard links here with ?identity__uuid=<uuid>.
        if lookup == "identity__uuid":
            return True
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AgentConnectionState)
class AgentConnectionStateAdmin(admin.ModelAdmin):
    """What the observer and the agents' own calls say about each agent, read-only."""

    list_display = (
        "identity",
        "transport",
        "connected_since",
        "owner_pod",
        "last_seen",
        "dispatches_succeeded",
        "dispatches_failed",
    )
    list_filter = ("transport",)
    search_fields = ("identity__name",)
    list_select_related = ("identity",)

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in AgentConnectionState._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AgentLog)
class AgentLogAdmin(admin.ModelAdmin):
    """The log lines agents shipped, read-only; deleting an agent deletes its lines, and
    they age out after AGENT_LOG_RETENTION_DAYS."""

    list_display = ("timestamp", "identity", "level", "module", "short_message")
    list_filter = ("level",)
    search_fields = ("message", "module", "identity__name")
    list_select_related = ("identity",)

    @admin.display(description="message")
    def short_message(self, log: AgentLog) -> str:
        return Truncator(log.message).chars(120)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    """The background jobs' runs, one per job and period, read-only."""

    list_display = ("job", "period_start", "outcome", "duration", "summary", "runner")
    list_filter = ("job", "outcome")
    date_hierarchy = "period_start"
    readonly_fields = (
        "job",
        "period_start",
        "period_seconds",
        "started_at",
        "finished_at",
        "outcome",
        "summary",
        "error",
        "runner",
    )

    @admin.display(description="duration (s)")
    def duration(self, run: JobRun) -> str:
        seconds = run.duration_seconds
        return "" if seconds is None else f"{seconds:.3f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ObserverStatus)
class ObserverStatusAdmin(admin.ModelAdmin):
    """The connection observer's row: which process is active (the lease holder, as
    host:pid:random), until when, and what it last saw of the broker; read-only."""

    list_display = (
        "name",
        "lease_holder",
        "lease_state",
        "lease_expires_at",
        "lease_acquired_at",
        "last_beat_at",
        "is_broker_available",
        "last_reconciled_at",
    )
    readonly_fields = (
        "name",
        "lease_holder",
        "lease_state",
        "lease_expires_at",
        "lease_acquired_at",
        "last_beat_at",
        "last_reconciled_at",
        "is_broker_available",
        "last_error",
    )

    @admin.display(description="lease")
    def lease_state(self, status: ObserverStatus) -> str:
        if not status.lease_holder:
            return "free (no observer active)"
        if status.lease_expires_at is None or status.lease_expires_at <= timezone.now():
            return "expired (a standby takes it at its next poll)"
        return "held"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
