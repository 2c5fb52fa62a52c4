"""Staff clean-ups of agents that went away (upstream's cleanup_stale and
cleanup_orphaned), run on demand: upstream schedules neither.

- A service is stale when it was last modified (registered, its statistics set, marked
  Idle) more than `older_than_hours` ago, whatever its state.
- An identity is orphaned when it has no service at all (upstream ignores
  `older_than_hours` here, and so do we).

A dry run lists what would go and deletes nothing. Identities go through
`delete_agent_identity`, which removes their broker users too.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from agentstats.errors import Unavailable
from marketplace.models import AgentIdentity, AgentService
from marketplace.registration.services import delete_agent_identity
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError


@dataclass(frozen=True)
class CleanupResult:
    """What a clean-up deleted (or would delete, in a dry run): one dict per item, with
    upstream's keys."""

    is_dry_run: bool
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deleted_count(self) -> int:
        return len(self.items)


def cleanup_stale_services(
    *, older_than_hours: int, is_dry_run: bool, now: datetime
) -> CleanupResult:
    """Delete (with their processors) the services not modified for `older_than_hours`."""
    threshold = now - timedelta(hours=older_than_hours)
    with transaction.atomic():
        stale = list(
            AgentService.objects.select_for_update(of=("self",))
            .select_related("identity")
            .filter(modified__lt=threshold)
            .order_by("modified", "id")
        )
        items = [
            {
                "uuid": service.uuid,
                "name": service.name,
                "identity__name": service.identity.name,
                "state": service.state,
                "modified": service.modified,
            }
            for service in stale
        ]
        if not is_dry_run:
            AgentService.objects.filter(pk__in=[service.pk for service in stale]).delete()
    return CleanupResult(is_dry_run=is_dry_run, items=items)


def cleanup_orphaned_identities(*, is_dry_run: bool, broker: ManagementClient) -> CleanupResult:
    """Delete the identities that have no service, one at a time with their broker users.

    Each identity is re-checked under its lock (a registration takes the same lock), so
    one that registers a service meanwhile is kept. When the broker fails, the identity
    at hand and the rest are kept and the answer is a 503 saying how many went before.
    """
    orphaned = list(
        AgentIdentity.objects.select_related("offering")
        .filter(services__isnull=True)
        .order_by("created", "id")
    )
    if is_dry_run:
        return CleanupResult(is_dry_run=True, items=[_identity_item(i) for i in orphaned])
    deleted: list[dict[str, Any]] = []
    for identity in orphaned:
        try:
            if _delete_if_still_orphaned(identity, broker=broker):
                deleted.append(_identity_item(identity))
        except BrokerError as exc:
            raise Unavailable(
                f"The broker could not be asked ({exc}): {len(deleted)} of {len(orphaned)} "
                "orphaned agent identities were deleted before it failed, the rest are "
                "kept; retry to delete them.",
                code="broker_unavailable",
            ) from exc
    return CleanupResult(is_dry_run=False, items=deleted)


def _delete_if_still_orphaned(identity: AgentIdentity, *, broker: ManagementClient) -> bool:
    with transaction.atomic():
        locked = AgentIdentity.objects.select_for_update().filter(pk=identity.pk).first()
        if locked is None or AgentService.objects.filter(identity=locked).exists():
            return False
        delete_agent_identity(locked, broker=broker)
    return True


def _identity_item(identity: AgentIdentity) -> dict[str, Any]:
    return {
        "uuid": identity.uuid,
        "name": identity.name,
        "offering__name": identity.offering.name,
        "created": identity.created,
    }
