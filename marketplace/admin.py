"""Admin pages for customers, offerings and site agents.

What an agent reports about itself (version, dependencies, config, restarts, service
states, statistics) is read-only here: the agent is its source of truth.
"""

from django.contrib import admin
from django.http import HttpRequest

from marketplace.models import (
    AgentConnectionEvent,
    AgentConnectionState,
    AgentIdentity,
    AgentProcessor,
    AgentService,
    Customer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)


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
    fields = ("uuid", "user", "observable_objects", "description", "source_ip", "created")
    readonly_fields = fields
    show_change_link = True


@admin.register(AgentIdentity)
class AgentIdentityAdmin(admin.ModelAdmin):
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
    inlines = (AgentServiceInline, EventSubscriptionInline)


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
    fields = ("offering", "object_type", "created")
    readonly_fields = fields


@admin.register(EventSubscription)
class EventSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("uuid", "agent_identity", "user", "description", "source_ip", "created")
    list_filter = ("agent_identity__offering",)
    search_fields = ("uuid", "description", "user__username", "agent_identity__name")
    list_select_related = ("agent_identity", "user")
    readonly_fields = ("uuid", "observable_objects", "source_ip", "created", "modified")
    inlines = (EventSubscriptionQueueInline,)


@admin.register(EventSubscriptionQueue)
class EventSubscriptionQueueAdmin(admin.ModelAdmin):
    list_display = ("__str__", "event_subscription", "offering", "object_type", "created")
    list_filter = ("object_type", "offering")
    search_fields = ("uuid", "event_subscription__uuid", "offering__name")
    list_select_related = ("event_subscription", "offering")
    readonly_fields = ("uuid", "created", "modified")


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
