"""The scrape's database reads beyond the stats' agent rows: who owns each offering, and
when the connection observer last beat. One query each, whatever the fleet size."""

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


def read_observer_last_beat() -> datetime | None:
    """When the connection observer last beat; None when it never has (one query)."""
    return (
        ObserverStatus.objects.filter(name="default").values_list("last_beat_at", flat=True).first()
    )
