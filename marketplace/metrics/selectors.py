"""The scrape's database reads beyond the stats' agent rows: who owns each offering, and
when the connection observer last beat and its lease. One query each, whatever the fleet
size."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from marketplace.models import AgentIdentity, ObserverStatus


@dataclass(frozen=True, slots=True)
class OfferingOwner:
    """The customer (the provider) an offering belongs to."""

    customer_uuid: UUID
    customer_name: str


def list_offering_owners() -> dict[UUID, OfferingOwner]:
    """The customer of every offering that has an agent, by offering uuid (one query)."""
    rows = (
        AgentIdentity.objects.order_by()
        .values_list("offering__uuid", "offering__customer__uuid", "offering__customer__name")
        .distinct()
    )
    return {
        offering_uuid: OfferingOwner(customer_uuid=customer_uuid, customer_name=customer_name)
        for offering_uuid, customer_uuid, customer_name in rows
    }


@dataclass(frozen=True, slots=True)
class ObserverReading:
    """The connection observer's row as a scrape reports it (all None before it exists)."""

    last_beat_at: datetime | None = None
    lease_expires_at: datetime | None = None
    lease_acquired_at: datetime | None = None


def read_observer_status() -> ObserverReading:
    """When the connection observer last beat and the active one's lease (one query)."""
    values = (
        ObserverStatus.objects.filter(name="default")
        .values("last_beat_at", "lease_expires_at", "lease_acquired_at")
        .first()
    )
    return ObserverReading(**values) if values else ObserverReading()
