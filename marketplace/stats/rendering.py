"""The connection report as the endpoint's JSON data, built from plain dicts.

`agentstats/serializers.py` describes this shape (OpenAPI schema, field docs); this module
builds it. At fleet scale DRF's nested serializers cost several times the broker's own
answer time (0.23 s against 0.04 s for 1,000 agents), so the response is built directly,
and a test keeps the two equal field for field.

An agent's database half (names, uuids, services, formatted times) is prepared while the
broker is still answering (`prepare_agents`); once the snapshot is in, only the live
fields are filled in (`render_report`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from marketplace.stats.merge import (
    AgentRow,
    AgentStatus,
    ConnectionReport,
    ConnectionSummary,
    QueueStatus,
    RmqConnectionStatus,
)

JSONObject = dict[str, Any]


def prepare_agents(rows: Sequence[AgentRow]) -> dict[UUID, JSONObject]:
    """The database half of every agent's entry, keyed by the agent's uuid."""
    return {row.uuid: _prepare_agent(row) for row in rows}


def render_report(
    report: ConnectionReport, prepared: Mapping[UUID, JSONObject] | None = None
) -> JSONObject:
    """The whole response body; `prepared` (from prepare_agents) is filled in, not copied."""
    return {
        "agents": [render_agent(agent, prepared) for agent in report.agents],
        "summary": render_summary(report.summary),
    }


def render_agent(
    agent: AgentStatus, prepared: Mapping[UUID, JSONObject] | None = None
) -> JSONObject:
    """One agent's entry: its prepared database half with the live fields set."""
    data = prepared[agent.row.uuid] if prepared is not None else _prepare_agent(agent.row)
    data["connected"] = agent.is_connected
    data["delivery_blocked_reason"] = agent.delivery_blocked_reason
    # The prepared subscriptions are in the row's order, as are the statuses.
    for sub_data, sub in zip(data["event_subscriptions"], agent.event_subscriptions, strict=True):
        sub_data["rmq_connection"] = _connection_data(sub.rmq_connection)
    data["queues"] = [_queue_data(queue) for queue in agent.queues]
    return data


def render_summary(summary: ConnectionSummary) -> JSONObject:
    """The summary's counters and snapshot time."""
    return {
        item.name: _format_value(getattr(summary, item.name)) for item in fields(ConnectionSummary)
    }


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a 'Z', as DRF's DateTimeField writes it (TIME_ZONE is UTC)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _prepare_agent(row: AgentRow) -> JSONObject:
    # Keys in the serializer's order; live ones hold a placeholder until render_agent.
    consumer = row.consumer
    return {
        "uuid": str(row.uuid),
        "name": row.name,
        "offering_uuid": str(row.offering_uuid),
        "offering_name": row.offering_name,
        "version": row.version,
        "last_restarted": format_time(row.last_restarted),
        "connected": False,
        "event_consumer_uuid": None if consumer is None else str(consumer.uuid),
        "user_uuid": None if row.user_uuid is None else str(row.user_uuid),
        "user_username": row.user_username,
        "user_full_name": row.user_full_name,
        "user_is_staff": row.user_is_staff,
        "auth_kind": None if consumer is None else consumer.auth_kind,
        "auth_token_prefix": None if consumer is None else consumer.auth_token_prefix,
        "auth_token_name": None if consumer is None else consumer.auth_token_name,
        "authorized_via": None if consumer is None else consumer.authorized_via,
        "delivery_blocked_reason": None,
        "services": [
            {
                "uuid": str(service.uuid),
                "name": service.name,
                "state": service.state,
                "modified": format_time(service.modified),
            }
            for service in row.services
        ],
        "event_subscriptions": [
            {
                "uuid": str(sub.uuid),
                "created": format_time(sub.created),
                "observable_objects": [{"object_type": kind} for kind in sub.object_types],
                "rmq_connection": None,
            }
            for sub in row.subscriptions
        ],
        "queues": [],
    }


def _connection_data(status: RmqConnectionStatus) -> JSONObject:
    return {
        "connected": status.connected,
        "source_ip": status.source_ip,
        "connected_at": format_time(status.connected_at),
        "state": status.state,
        "recv_oct": status.recv_oct,
        "send_oct": status.send_oct,
        "node": status.node,
        "protocol": status.protocol,
    }


def _queue_data(queue: QueueStatus) -> JSONObject:
    return {
        "name": queue.name,
        "vhost": queue.vhost,
        "messages": queue.messages,
        "consumers": queue.consumers,
        "object_type": queue.object_type,
        "kind": queue.kind,
        "exists_on_broker": queue.exists_on_broker,
        "state": queue.state,
        "node": queue.node,
    }


def _format_value(value: object) -> object:
    return format_time(value) if isinstance(value, datetime) else value
