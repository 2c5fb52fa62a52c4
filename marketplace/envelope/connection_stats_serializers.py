"""Shapes of POST /api/agents/get_connection_stats/: Svantic's documented answer, plus our
finer transports and what was counted.

Every key is a declared field (no DictField), so the OpenAPI schema is fully typed.
"""

from collections.abc import Mapping

from rest_framework import serializers

from marketplace.names import (
    AgentTransport,
    ConnectionStatus,
    DeploymentMode,
    EnvelopeTransport,
    LabelledChoice,
)

SCOPE_KINDS = ["global", "tenant", "own"]


class ConnectionStatsInputSerializer(serializers.Serializer):
    tenant_id = serializers.UUIDField(
        required=False,
        help_text="Customer uuid: count only its agents. Staff and support may omit it for "
        "every tenant; others then count the agents of their customers and their own.",
    )
    agent_type = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Count only agents of this type. Every agent here is a "
        "`waldur-site-agent`: any other type counts none.",
    )


def _build_totals_serializer(
    name: str, kind: type[LabelledChoice], help_texts: Mapping[LabelledChoice, str]
) -> type[serializers.Serializer]:
    """A serializer with one count per member of `kind`, in its order: none left out."""
    if set(help_texts) != set(kind):
        raise ValueError(f"{name}: a help text for each {kind.__name__}, and only those")
    fields = {
        member.value: serializers.IntegerField(help_text=help_texts[member]) for member in kind
    }
    return type(name, (serializers.Serializer,), fields)


DeploymentModeTotalsOutputSerializer = _build_totals_serializer(
    "DeploymentModeTotalsOutputSerializer",
    DeploymentMode,
    {
        DeploymentMode.HOSTED: "Agents that only poll the API.",
        DeploymentMode.CONNECTED: "Agents consuming events over the broker.",
    },
)
ConnectionStatusTotalsOutputSerializer = _build_totals_serializer(
    "ConnectionStatusTotalsOutputSerializer",
    ConnectionStatus,
    {
        ConnectionStatus.UNKNOWN: "Agents whose state cannot be told.",
        ConnectionStatus.ONLINE: "Reachable, quiet agents.",
        ConnectionStatus.HEALTHY: "Reachable, active agents.",
        ConnectionStatus.DEGRADED: "Failing or flapping agents.",
        ConnectionStatus.OFFLINE: "Unreachable agents.",
    },
)
TransportTotalsOutputSerializer = _build_totals_serializer(
    "TransportTotalsOutputSerializer",
    EnvelopeTransport,
    {
        EnvelopeTransport.WS: "Connected agents (events over a held broker connection).",
        EnvelopeTransport.CALLBACK: "Hosted agents (they poll the API).",
    },
)
TransportDetailTotalsOutputSerializer = _build_totals_serializer(
    "TransportDetailTotalsOutputSerializer",
    AgentTransport,
    {
        AgentTransport.WEB_STOMP: "STOMP over WebSocket.",
        AgentTransport.STOMP: "Plain STOMP.",
        AgentTransport.AMQP: "AMQP.",
        AgentTransport.POLLING: "Polling the API only.",
    },
)


class ConnectionStatsTotalsOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Agents counted.")
    by_deployment_mode = DeploymentModeTotalsOutputSerializer(help_text="Per deployment mode.")
    by_status = ConnectionStatusTotalsOutputSerializer(help_text="Per connection_status.")
    by_transport = TransportTotalsOutputSerializer(help_text="Per transport (Svantic's two).")
    by_transport_detail = TransportDetailTotalsOutputSerializer(
        help_text="Per transport_detail (ours: ws, stomp, amqp, polling)."
    )


class ConnectionStatsResponseSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Always true on success.")
    stats = ConnectionStatsTotalsOutputSerializer(help_text="The totals.")
    tenant_id = serializers.UUIDField(
        allow_null=True, help_text="The tenant counted; null when none was asked for."
    )
    agent_type = serializers.CharField(
        required=False, help_text="The agent_type filter, echoed only when it was given."
    )
    scope = serializers.ChoiceField(
        choices=SCOPE_KINDS,
        help_text="What was counted: global (staff/support, every agent), tenant (one "
        "customer), own (the caller's customers' agents and the agents it created).",
    )
