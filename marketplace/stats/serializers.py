"""Shapes of the connection-stats endpoint: its query and its (fully typed) response.

Both lines of Waldur's SDK parse the response: the 8.1 keys are present (nullable), queue
`kind` is one of consumer/legacy/unknown, service states are upper case.
"""

from typing import Any

from rest_framework import serializers

from marketplace.names import (
    REPORTED_SERVICE_STATES,
    AgentServiceState,
    AuthKind,
    AuthorizedVia,
    DeliveryBlockedReason,
    QueueKind,
)
from marketplace.stats.selectors import AgentFilters

_REPORTED_STATES_TEXT = ", ".join(REPORTED_SERVICE_STATES)  # ACTIVE, IDLE, ERROR
_REPORTED_STATES_PROSE = (
    f"{', '.join(REPORTED_SERVICE_STATES[:-1])} or {REPORTED_SERVICE_STATES[-1]}"
)


class ConnectionStatsQuerySerializer(serializers.Serializer):
    """The stats filters; the dashboard and the connection_stats command validate with it."""

    offering_uuid = serializers.UUIDField(required=False, help_text="Only this offering.")
    customer_uuid = serializers.UUIDField(required=False, help_text="Only this customer.")
    connected = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        help_text="Only agents with (true) or without (false) a live broker connection.",
    )
    service_state = serializers.CharField(
        required=False,
        help_text=f"Only agents with a service in this state: {_REPORTED_STATES_PROSE} "
        "(any letter case).",
    )
    name = serializers.CharField(
        required=False, max_length=255, help_text="Agent name contains this (any case)."
    )

    @classmethod
    def filter_names(cls) -> tuple[str, ...]:
        """The filters' names, in declaration order."""
        return tuple(cls().fields)

    def validate_service_state(self, value: str) -> str:
        state = AgentServiceState.parse(value)
        if state is None:
            raise serializers.ValidationError(f"Must be one of {_REPORTED_STATES_TEXT}.")
        # The stored spelling, as a plain str: the shared answers are keyed by repr(filters).
        return state.value

    def to_filters(self) -> AgentFilters:
        data: dict[str, Any] = self.validated_data
        connected = data.get("connected")
        return AgentFilters(
            offering_uuid=data.get("offering_uuid"),
            customer_uuid=data.get("customer_uuid"),
            service_state=data.get("service_state"),
            name=data.get("name"),
            connected=None if connected is None else connected == "true",
        )


class RmqConnectionOutputSerializer(serializers.Serializer):
    connected = serializers.BooleanField(
        help_text="A live connection logged in as this subscription exists on the broker."
    )
    source_ip = serializers.CharField(allow_null=True, help_text="Client address, if connected.")
    connected_at = serializers.DateTimeField(
        allow_null=True, help_text="When the reported connection opened (UTC)."
    )
    state = serializers.CharField(
        allow_null=True,
        help_text="Broker connection state (running, blocked, ...); null until the broker "
        "has emitted stats for a new connection.",
    )
    recv_oct = serializers.IntegerField(
        allow_null=True, help_text="Bytes the broker received on it; null until reported."
    )
    send_oct = serializers.IntegerField(
        allow_null=True, help_text="Bytes the broker sent on it; null until reported."
    )
    node = serializers.CharField(allow_null=True, help_text="Broker node holding it.")
    protocol = serializers.CharField(allow_null=True, help_text="e.g. 'Web STOMP 1.2'.")


class ObservableObjectStatusOutputSerializer(serializers.Serializer):
    object_type = serializers.CharField(help_text="Object type the agent registered.")


class SubscriptionStatusOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Subscription uuid; its hex is the broker user.")
    created = serializers.DateTimeField(help_text="When the subscription was created.")
    observable_objects = ObservableObjectStatusOutputSerializer(
        many=True, help_text="Object types the agent registered for this subscription."
    )
    rmq_connection = RmqConnectionOutputSerializer(help_text="Live broker connection status.")


class QueueStatusOutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Queue name.")
    vhost = serializers.CharField(help_text="Queue vhost (the owner's uuid hex).")
    messages = serializers.IntegerField(
        allow_null=True,
        help_text="Messages waiting; 0 if missing on the broker; null (unknown) while the "
        "queue's node is down.",
    )
    consumers = serializers.IntegerField(help_text="Consumers reading it; 0 if missing.")
    object_type = serializers.CharField(
        allow_null=True,
        help_text="Object type parsed from a legacy queue's name; null for the consumer "
        "queue, which carries every type.",
    )
    kind = serializers.ChoiceField(
        choices=QueueKind.values(),
        help_text="consumer: the agent's unified queue consumer_<consumer uuid hex>; legacy: "
        "a per-subscription queue subscription_<sub>_offering_<o>_<type>.",
    )
    exists_on_broker = serializers.BooleanField(
        help_text="False when the database has the queue but the broker does not: its "
        "messages and consumers are then reported as 0. A queue whose node is down still "
        "exists (true)."
    )
    state = serializers.CharField(
        allow_null=True,
        help_text="The broker's queue state (running, idle, ...; down while the node that "
        "holds it is down); null when the broker lacks the queue.",
    )
    node = serializers.CharField(
        allow_null=True,
        help_text="Broker node holding the queue (a classic queue lives on one node); null "
        "when the broker lacks the queue.",
    )


class ServiceStatusOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Service uuid.")
    name = serializers.CharField(help_text="Service name.")
    state = serializers.ChoiceField(choices=REPORTED_SERVICE_STATES, help_text="Service state.")
    modified = serializers.DateTimeField(help_text="When the service last changed.")


class AgentConnectionOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(source="row.uuid", help_text="Agent identity uuid.")
    name = serializers.CharField(source="row.name", help_text="Agent name.")
    offering_uuid = serializers.UUIDField(source="row.offering_uuid", help_text="Offering uuid.")
    offering_name = serializers.CharField(source="row.offering_name", help_text="Offering name.")
    version = serializers.CharField(source="row.version", help_text="Agent version reported.")
    last_restarted = serializers.DateTimeField(
        source="row.last_restarted",
        help_text="When the agent last started; its registration time if it never said.",
    )
    connected = serializers.BooleanField(
        source="is_connected",
        help_text="One of the agent's own subscriptions has a live connection, or its event "
        "consumer's queue has a consumer, or a live connection logs in as the consumer's "
        "broker user in its owner's vhost.",
    )
    event_consumer_uuid = serializers.UUIDField(
        source="row.consumer.uuid",
        allow_null=True,
        help_text="The agent's unified event consumer; null while it runs on legacy "
        "subscriptions only.",
    )
    user_uuid = serializers.UUIDField(
        source="row.user_uuid",
        allow_null=True,
        help_text="The event consumer's owner; without a consumer, the user who registered "
        "the agent.",
    )
    user_username = serializers.CharField(
        source="row.user_username", allow_null=True, help_text="That user's username."
    )
    user_full_name = serializers.CharField(
        source="row.user_full_name", allow_null=True, help_text="That user's full name."
    )
    user_is_staff = serializers.BooleanField(
        source="row.user_is_staff", allow_null=True, help_text="Whether that user is staff."
    )
    auth_kind = serializers.ChoiceField(
        source="row.consumer.auth_kind",
        choices=AuthKind.values(),
        allow_null=True,
        help_text="How the caller that registered the event consumer authenticated; null "
        "without a consumer or when not recorded.",
    )
    auth_token_prefix = serializers.CharField(
        source="row.consumer.auth_token_prefix",
        allow_null=True,
        help_text="The first characters of the API token that registered the event "
        "consumer (never the token); null when not recorded.",
    )
    auth_token_name = serializers.CharField(
        source="row.consumer.auth_token_name",
        allow_null=True,
        help_text="The name of that token; null when it has none.",
    )
    authorized_via = serializers.ChoiceField(
        source="row.consumer.authorized_via",
        choices=AuthorizedVia.values(),
        allow_null=True,
        help_text="Which right let the caller register the event consumer; null when not recorded.",
    )
    delivery_blocked_reason = serializers.ChoiceField(
        choices=DeliveryBlockedReason.values(),
        allow_null=True,
        help_text="Why no event can reach the event consumer, the first that applies: "
        "owner_deactivated, queue_not_provisioned (missing on the broker), "
        "queue_node_down (the broker node holding its queue is down), "
        "broker_credential_missing (the owner has no API token, its broker password), "
        "owner_has_no_role (not an owner of the offering's customer now: staff and the "
        "agent's creator hold no broker credential by that alone), no_object_types (none "
        "of its filter's types is known); null "
        "when delivery works or the agent has no consumer.",
    )
    services = ServiceStatusOutputSerializer(
        source="row.services", many=True, help_text="The agent's services."
    )
    event_subscriptions = SubscriptionStatusOutputSerializer(
        many=True, help_text="The agent's own subscriptions with their live connection."
    )
    queues = QueueStatusOutputSerializer(
        many=True, help_text="The agent's own queues: its event consumer's first, if any."
    )


class ConnectionSummaryOutputSerializer(serializers.Serializer):
    total_agents = serializers.IntegerField(help_text="Agents in the (filtered) report.")
    connected_agents = serializers.IntegerField(help_text="Agents with a live connection.")
    disconnected_agents = serializers.IntegerField(help_text="Agents without one.")
    total_queued_messages = serializers.IntegerField(
        help_text="Messages waiting in the agents' queues, each queue counted once."
    )
    total_subscriptions = serializers.IntegerField(help_text="Subscriptions of those agents.")
    connected_subscriptions = serializers.IntegerField(
        help_text="Subscriptions with a live connection."
    )
    total_queues = serializers.IntegerField(help_text="Queues of those agents.")
    queues_missing_on_broker = serializers.IntegerField(
        help_text="Queues the database has and the broker does not."
    )
    queues_without_consumers = serializers.IntegerField(
        help_text="Queues on the broker nobody consumes (those on down nodes not counted)."
    )
    queues_on_down_nodes = serializers.IntegerField(
        help_text="Queues whose broker node is down: they exist, their messages are unknown "
        "(not counted in total_queued_messages)."
    )
    snapshot_taken_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the broker was asked; snapshots are shared for BROKER_SNAPSHOT_TTL.",
    )
    broker_node = serializers.CharField(
        allow_null=True,
        help_text="The management node (host:port) that answered the snapshot; null when "
        "not known.",
    )


class ConnectionStatsOutputSerializer(serializers.Serializer):
    agents = AgentConnectionOutputSerializer(many=True, help_text="One entry per agent.")
    summary = ConnectionSummaryOutputSerializer(help_text="Totals over the listed agents.")
