"""Shapes of the connection envelope API (/api/agents/...)."""

from typing import Any

from rest_framework import serializers

from agentstats.api.validation import reject_future_time
from marketplace.envelope.selectors import ConnectionEnvelope
from marketplace.names import (
    AGENT_TYPE,
    ALERTING_LOG_LEVEL_VALUES,
    AgentTransport,
    ConnectionEventKind,
    ConnectionStatus,
    DeploymentMode,
    EnvelopeTransport,
    RoutingStatus,
)


class ConnectionLookupInputSerializer(serializers.Serializer):
    instance_id = serializers.UUIDField(help_text="The agent identity's uuid.")
    tenant_id = serializers.UUIDField(
        required=False, help_text="Customer uuid; narrows the lookup to that tenant."
    )


class DispatchInputSerializer(serializers.Serializer):
    instance_id = serializers.UUIDField(help_text="The agent identity's uuid.")
    succeeded = serializers.BooleanField(help_text="Whether the dispatch succeeded.")
    error = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why it failed."
    )
    occurred_at = serializers.DateTimeField(
        required=False,
        validators=[reject_future_time],
        help_text="When it happened (default: now); a naive time is UTC. At most "
        "AGENT_CLOCK_SKEW_SECONDS ahead of the server's clock.",
    )


class HeartbeatInputSerializer(serializers.Serializer):
    instance_id = serializers.UUIDField(help_text="The agent identity's uuid.")


class ThresholdsOutputSerializer(serializers.Serializer):
    healthy_seen_seconds = serializers.FloatField(
        help_text="An API call within this makes a reachable agent healthy (else online)."
    )
    offline_after_seconds = serializers.FloatField(
        help_text="A polling agent unseen for longer is offline."
    )
    degraded_window_seconds = serializers.FloatField(
        help_text="A failed dispatch within this makes the agent degraded."
    )
    flap_threshold = serializers.IntegerField(
        help_text="This many disconnects in 24 h make the agent degraded."
    )
    observer_stale_after_seconds = serializers.FloatField(
        help_text="An observer silent for longer makes broker-connected agents unknown."
    )


class LastErrorLogOutputSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When the agent logged it.")
    level = serializers.ChoiceField(choices=ALERTING_LOG_LEVEL_VALUES, help_text="Its level.")
    message = serializers.CharField(help_text="The log message.")
    module = serializers.CharField(
        allow_blank=True, help_text="The agent module that logged it (may be empty)."
    )


class ConnectionEnvelopeOutputSerializer(serializers.Serializer):
    instance_id = serializers.UUIDField(help_text="The agent identity's uuid.")
    agent_type = serializers.CharField(help_text="Kind of agent.")
    tenant_id = serializers.UUIDField(help_text="Customer uuid owning the agent's offering.")
    deployment_mode = serializers.ChoiceField(
        choices=DeploymentMode.values(),
        help_text="connected: consumes events over the broker; hosted: only polls the API.",
    )
    transport = serializers.ChoiceField(
        choices=EnvelopeTransport.values(),
        help_text="Svantic's transport: ws for a connected agent, callback for a hosted one.",
    )
    transport_detail = serializers.ChoiceField(
        choices=AgentTransport.values(),
        help_text="How it gets events: ws (STOMP over WebSocket), stomp, amqp or polling.",
    )
    connection_status = serializers.ChoiceField(
        choices=ConnectionStatus.values(), help_text="Judged from the facts and thresholds."
    )
    status = serializers.ChoiceField(choices=RoutingStatus.values(), help_text="Routing status.")
    status_reason = serializers.CharField(help_text="Machine-readable reason for the status.")
    owner_pod = serializers.CharField(
        allow_null=True, help_text="Broker node holding its latest connection."
    )
    connected_since = serializers.DateTimeField(
        allow_null=True, help_text="Start of its current uninterrupted broker connection."
    )
    open_connections = serializers.IntegerField(help_text="Broker connections open now.")
    last_dispatch_at = serializers.DateTimeField(allow_null=True, help_text="Latest dispatch.")
    dispatches_succeeded = serializers.IntegerField(help_text="Dispatches that succeeded.")
    dispatches_failed = serializers.IntegerField(help_text="Dispatches that failed.")
    last_dispatch_error = serializers.CharField(
        allow_null=True, help_text="Error of the latest failed dispatch."
    )
    last_seen = serializers.DateTimeField(
        allow_null=True, help_text="Latest authenticated API call of the agent."
    )
    last_heartbeat_at = serializers.DateTimeField(
        allow_null=True, help_text="Latest explicit heartbeat."
    )
    ws_mesh_pod_id = serializers.CharField(
        allow_null=True, help_text="Broker node of its WebSocket connection, if any."
    )
    ws_last_seen = serializers.DateTimeField(
        allow_null=True, help_text="When a WebSocket connection of it was last seen open."
    )
    uptime_24h_seconds = serializers.FloatField(
        help_text="Seconds with a broker connection open in the last 24 h."
    )
    flaps_24h = serializers.IntegerField(help_text="Disconnects in the last 24 h.")
    thresholds = ThresholdsOutputSerializer(help_text="The thresholds in force.")
    last_error_log = LastErrorLogOutputSerializer(
        allow_null=True,
        help_text="The latest ERROR or CRITICAL line the agent shipped; null when none.",
    )

    def to_representation(self, instance: ConnectionEnvelope) -> dict[str, Any]:
        state = instance.state
        return super().to_representation(
            {
                "instance_id": instance.identity.uuid,
                "agent_type": AGENT_TYPE,
                "tenant_id": instance.identity.offering.customer.uuid,
                "deployment_mode": instance.judgement.deployment_mode,
                "transport": instance.transport,
                "transport_detail": instance.transport_detail,
                "connection_status": instance.judgement.connection_status,
                "status": instance.judgement.status,
                "status_reason": instance.judgement.status_reason,
                "owner_pod": state.owner_pod or None,
                "connected_since": state.connected_since,
                "open_connections": instance.open_connections,
                "last_dispatch_at": state.last_dispatch_at,
                "dispatches_succeeded": state.dispatches_succeeded,
                "dispatches_failed": state.dispatches_failed,
                "last_dispatch_error": state.last_dispatch_error or None,
                "last_seen": state.last_seen,
                "last_heartbeat_at": state.last_heartbeat_at,
                "ws_mesh_pod_id": instance.ws_mesh_pod_id,
                "ws_last_seen": state.ws_last_seen,
                "uptime_24h_seconds": round(instance.uptime_24h_seconds, 3),
                "flaps_24h": instance.flaps_24h,
                "thresholds": instance.thresholds,
                "last_error_log": instance.last_error_log,
            }
        )


class ConnectionEnvelopeResponseSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Always true on success.")
    connection = ConnectionEnvelopeOutputSerializer(help_text="The agent's envelope.")


class ConnectionEventOutputSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Event uuid.")
    kind = serializers.ChoiceField(choices=ConnectionEventKind.values(), help_text="What.")
    occurred_at = serializers.DateTimeField(help_text="When, by the broker's clock.")
    connection_name = serializers.CharField(help_text="Broker connection name.")
    subscription_uuid = serializers.UUIDField(
        allow_null=True, help_text="Subscription the connection logged in as."
    )
    event_consumer_uuid = serializers.UUIDField(
        allow_null=True, help_text="Event consumer the connection logged in as."
    )
    node = serializers.CharField(help_text="Broker node.")
    peer_host = serializers.CharField(help_text="Client address.")
    transport = serializers.CharField(help_text="ws, stomp or amqp.")
    reason = serializers.CharField(
        help_text="opened/closed (broker event), found_at_reconcile/gone_at_reconcile "
        "(noticed by the observer's reconciliation)."
    )
