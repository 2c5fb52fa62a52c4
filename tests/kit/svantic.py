"""A client of Svantic's agent-connection API written from Svantic's documentation alone
(POST /agents/get_connection and /agents/get_connection_stats): what a dashboard built for
Svantic expects. It knows none of our extra fields and ignores them; a documented key
that is missing, or has the wrong type or an undocumented value, is an error.
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

DEPLOYMENT_MODES = frozenset({"hosted", "connected"})
TRANSPORTS = frozenset({"ws", "callback"})
CONNECTION_STATUSES = frozenset({"unknown", "online", "healthy", "degraded", "offline"})
ROUTING_STATUSES = frozenset({"available", "unknown", "busy", "unhealthy", "offline"})


class SvanticShapeError(ValueError):
    """The body is not what Svantic documents."""


@dataclass(frozen=True)
class SvanticConnection:
    instance_id: str
    agent_type: str
    tenant_id: str
    deployment_mode: str
    transport: str
    connection_status: str
    owner_pod: str | None
    connected_since: datetime | None
    last_dispatch_at: datetime | None
    dispatches_succeeded: int
    dispatches_failed: int
    last_dispatch_error: str | None
    status: str
    last_seen: datetime | None
    ws_mesh_pod_id: str | None
    ws_last_seen: datetime | None


@dataclass(frozen=True)
class SvanticStats:
    total: int
    by_deployment_mode: dict[str, int]
    by_status: dict[str, int]
    by_transport: dict[str, int]


@dataclass(frozen=True)
class SvanticStatsAnswer:
    stats: SvanticStats
    tenant_id: str | None
    agent_type: str | None  # documented as echoed only when the request had the filter


_MOMENTS = frozenset({"connected_since", "last_dispatch_at", "last_seen", "ws_last_seen"})
_COUNTS = frozenset({"dispatches_succeeded", "dispatches_failed"})
_NULLABLE_TEXTS = frozenset({"owner_pod", "last_dispatch_error", "ws_mesh_pod_id"})
_ENUMS = {
    "deployment_mode": DEPLOYMENT_MODES,
    "transport": TRANSPORTS,
    "connection_status": CONNECTION_STATUSES,
    "status": ROUTING_STATUSES,
}


def parse_connection_answer(body: Any) -> SvanticConnection:
    """{"ok": true, "connection": {...}} -> the connection, or SvanticShapeError."""
    _require_ok(body)
    item = _object(body, "connection")
    values: dict[str, Any] = {}
    for field in fields(SvanticConnection):
        value = _key(item, field.name)
        if field.name in _MOMENTS:
            values[field.name] = _moment(value, field.name)
        elif field.name in _COUNTS:
            values[field.name] = _count(value, field.name)
        else:
            values[field.name] = _text(value, field.name, is_nullable=field.name in _NULLABLE_TEXTS)
        if field.name in _ENUMS and value not in _ENUMS[field.name]:
            raise SvanticShapeError(f"{field.name}: {value!r} is not a documented value")
    return SvanticConnection(**values)


def parse_stats_answer(body: Any) -> SvanticStatsAnswer:
    """{"ok": true, "stats": {...}, "tenant_id", "agent_type"?} -> the answer."""
    _require_ok(body)
    stats = _object(body, "stats")
    by_deployment_mode = _counts(stats, "by_deployment_mode")
    if not set(by_deployment_mode) >= DEPLOYMENT_MODES:
        raise SvanticShapeError("by_deployment_mode: hosted and connected are documented")
    agent_type = body.get("agent_type")
    return SvanticStatsAnswer(
        stats=SvanticStats(
            total=_count(_key(stats, "total"), "total"),
            by_deployment_mode=by_deployment_mode,
            by_status=_counts(stats, "by_status"),
            by_transport=_counts(stats, "by_transport"),
        ),
        tenant_id=_text(_key(body, "tenant_id"), "tenant_id", is_nullable=True),
        agent_type=None if agent_type is None else _text(agent_type, "agent_type"),
    )


def _require_ok(body: Any) -> None:
    if not isinstance(body, Mapping) or _key(body, "ok") is not True:
        raise SvanticShapeError("not an ok answer")


def _key(item: Mapping[str, Any], key: str) -> Any:
    if key not in item:
        raise SvanticShapeError(f"missing key {key!r}")
    return item[key]


def _object(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _key(item, key)
    if not isinstance(value, Mapping):
        raise SvanticShapeError(f"{key}: an object is documented")
    return value


def _counts(item: Mapping[str, Any], key: str) -> dict[str, int]:
    return {name: _count(count, f"{key}.{name}") for name, count in _object(item, key).items()}


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SvanticShapeError(f"{key}: a count is documented, got {value!r}")
    return value


def _text(value: Any, key: str, *, is_nullable: bool = False) -> Any:
    if value is None and is_nullable:
        return None
    if not isinstance(value, str):
        raise SvanticShapeError(f"{key}: a string is documented, got {value!r}")
    return value


def _moment(value: Any, key: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(_text(value, key))
    except ValueError as exc:
        raise SvanticShapeError(f"{key}: an ISO 8601 time is documented") from exc
