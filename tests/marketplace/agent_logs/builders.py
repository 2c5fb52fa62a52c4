"""Helpers of the agent log tests: a log line as the agent ships it, and stored lines."""

import time
from datetime import UTC, datetime

from marketplace.models import AgentIdentity, AgentLog

LOGS = "/api/marketplace-site-agent-logs/"


def shipped_entry(identity: AgentIdentity, **overrides) -> dict:
    """One entry as waldur-site-agent's log shipper sends it (uuid hex, epoch float)."""
    entry = {
        "agent_identity_uuid": identity.uuid.hex,
        "timestamp": time.time() - 5,
        "level": "INFO",
        "message": "Processing order",
        "module": "waldur_site_agent.common.processors",
    }
    return {**entry, **overrides}


def store_log(identity: AgentIdentity, *, at: datetime, level: str = "INFO", **fields) -> AgentLog:
    """A stored line logged at `at` (and received then, unless `created` says otherwise)."""
    created = fields.pop("created", at)
    log = AgentLog.objects.create(
        identity=identity,
        timestamp=at,
        level=level,
        message=fields.pop("message", "a line"),
        module=fields.pop("module", "tests"),
    )
    AgentLog.objects.filter(pk=log.pk).update(created=created)
    log.refresh_from_db()
    return log


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, tzinfo=UTC)
