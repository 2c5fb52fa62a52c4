"""Writes of agent log lines: one batch in one INSERT, and retention.

A batch is all or nothing: an entry naming an agent the caller may not write for refuses
the whole batch, so an agent's retry never duplicates the lines that were kept.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from agentstats.errors import Forbidden, InvalidInput
from agentstats.models import User
from marketplace.access import (
    is_agent_principal,
    restrict_to_managed_identities,
    restrict_to_visible_identities,
)
from marketplace.envelope.services import touch_agent_last_seen
from marketplace.models import AgentIdentity, AgentLog

logger = logging.getLogger(__name__)

TRUNCATION_MARK = " [truncated]"
PRUNE_BATCH_SIZE = 5000


@dataclass(frozen=True)
class AgentLogLine:
    """One validated entry of a shipped batch."""

    identity_uuid: UUID
    timestamp: datetime
    level: str
    message: str
    module: str

    @classmethod
    def from_validated(cls, data: Mapping[str, Any]) -> "AgentLogLine":
        return cls(
            identity_uuid=data["agent_identity_uuid"],
            timestamp=data["timestamp"],
            level=data["level"],
            message=data["message"],
            module=data["module"],
        )


def record_agent_logs(lines: Sequence[AgentLogLine], *, user: User) -> list[AgentLog]:
    """Store a batch of log lines in one INSERT, if the user manages every agent it names.

    An agent the user may not see is unknown (400, as if it did not exist); one it sees
    but does not manage (support) is refused (403). Either refuses the whole batch.
    Shipping logs is an agent's call like any other: each agent whose own principal sent
    the batch counts as seen now.
    """
    identities = _find_writable_identities({line.identity_uuid for line in lines}, user=user)
    rows = [
        AgentLog(
            identity=identities[line.identity_uuid],
            timestamp=line.timestamp,
            level=line.level,
            message=fit_log_message(line.message),
            module=line.module,
        )
        for line in lines
    ]
    logs = AgentLog.objects.bulk_create(rows)
    seen_at = timezone.now()
    for identity in identities.values():
        if is_agent_principal(user, identity):
            touch_agent_last_seen(identity, at=seen_at)
    return logs


def _find_writable_identities(uuids: set[UUID], *, user: User) -> dict[UUID, AgentIdentity]:
    candidates = AgentIdentity.objects.filter(uuid__in=uuids).select_related("offering")
    visible = {
        identity.uuid: identity for identity in restrict_to_visible_identities(candidates, user)
    }
    unknown = sorted(uuid.hex for uuid in uuids - visible.keys())
    if unknown:
        raise InvalidInput(
            f"Unknown agent identity: {', '.join(unknown)}; nothing was stored.",
            code="unknown_agent_identity",
            field="agent_identity_uuid",
        )
    managed = set(restrict_to_managed_identities(candidates, user).values_list("uuid", flat=True))
    unmanaged = sorted(uuid.hex for uuid in visible.keys() - managed)
    if unmanaged:
        raise Forbidden(f"You do not manage agent {', '.join(unmanaged)}; nothing was stored.")
    return visible


def fit_log_message(message: str) -> str:
    """The message as stored: NUL and unpaired surrogates (which PostgreSQL cannot store)
    replaced, and cut to AGENT_LOG_MESSAGE_MAX_LENGTH characters, marked as truncated."""
    message = message.replace("\x00", "\ufffd")
    message = message.encode("utf-8", "replace").decode("utf-8")
    limit = settings.AGENT_LOG_MESSAGE_MAX_LENGTH
    if len(message) <= limit:
        return message
    if limit <= len(TRUNCATION_MARK):
        return message[:limit]
    return message[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def prune_agent_logs(*, now: datetime, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete the lines received more than AGENT_LOG_RETENTION_DAYS before `now`, at most
    `batch_size` rows per statement so no delete holds locks for long; return how many.

    A retention of 0 days (or less) keeps every line."""
    if settings.AGENT_LOG_RETENTION_DAYS <= 0:
        return 0
    cutoff = now - timedelta(days=settings.AGENT_LOG_RETENTION_DAYS)
    expired = AgentLog.objects.filter(created__lt=cutoff).order_by()
    deleted = 0
    while True:
        batch = list(expired.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += AgentLog.objects.filter(pk__in=batch).delete()[0]
        if len(batch) < batch_size:
            return deleted
