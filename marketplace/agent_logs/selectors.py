"""Reads of agent log lines: the caller's visible lines, filtered, newest first."""

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from agentstats.models import User
from marketplace.access import list_visible_agent_logs
from marketplace.models import AgentLog


def list_agent_logs(user: User, *, filters: Mapping[str, Any]) -> QuerySet[AgentLog]:
    """The log lines of the agents the user may see, newest first, narrowed by the list's
    validated filters (agent, offering, levels, a time window on when each was logged)."""
    logs = list_visible_agent_logs(user)
    if "agent_identity_uuid" in filters:
        logs = logs.filter(identity__uuid=filters["agent_identity_uuid"])
    if "offering_uuid" in filters:
        logs = logs.filter(identity__offering__uuid=filters["offering_uuid"])
    if filters.get("level"):
        logs = logs.filter(level__in=filters["level"])
    for key in ("since", "timestamp_from"):
        if key in filters:
            logs = logs.filter(timestamp__gte=filters[key])
    for key in ("until", "timestamp_to"):
        if key in filters:
            logs = logs.filter(timestamp__lte=filters[key])
    return logs.order_by("-timestamp", "-id")
