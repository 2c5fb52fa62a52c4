"""The reads an agent makes before it works, from the database and the package metadata.

This service keeps no service-provider rows: a customer with an offering is a service
provider, and the provider's uuid is the customer's.
"""

from dataclasses import dataclass
from importlib import metadata
from uuid import UUID

from django.db.models import QuerySet

from agentstats.models import User
from marketplace.access import restrict_to_visible_offerings
from marketplace.models import Customer, Offering

DISTRIBUTION_NAME = "agentstats"
CUSTOMER_OWNER_ROLE = "CUSTOMER.OWNER"
CUSTOMER_SCOPE = "customer"


@dataclass(frozen=True)
class UserPermission:
    """One role a user holds, in upstream's `permissions` item shape."""

    role_name: str
    scope_type: str
    scope_uuid: UUID
    scope_name: str
    customer_uuid: UUID
    customer_name: str


def read_service_version() -> str:
    """This service's installed version, from its package metadata ("unknown" uninstalled)."""
    try:
        return metadata.version(DISTRIBUTION_NAME)
    except metadata.PackageNotFoundError:
        return "unknown"


def list_user_permissions(user: User) -> list[UserPermission]:
    """The roles the user holds: the owner role of each customer it owns (the only role
    this service knows)."""
    return [
        UserPermission(
            role_name=CUSTOMER_OWNER_ROLE,
            scope_type=CUSTOMER_SCOPE,
            scope_uuid=customer.uuid,
            scope_name=customer.name,
            customer_uuid=customer.uuid,
            customer_name=customer.name,
        )
        for customer in user.owned_customers.all()
    ]


def find_visible_offering(user: User, offering_uuid: UUID) -> Offering | None:
    """The offering with this uuid if the user may see its agents, else None (as if it did
    not exist)."""
    offerings = restrict_to_visible_offerings(Offering.objects.select_related("customer"), user)
    return offerings.filter(uuid=offering_uuid).first()


def list_visible_service_providers(
    user: User, *, customer_uuid: UUID | None = None
) -> QuerySet[Customer]:
    """Service providers the user may see: the customers of the offerings it may see."""
    offerings = restrict_to_visible_offerings(Offering.objects.all(), user)
    providers = Customer.objects.filter(pk__in=offerings.values("customer_id"))
    if customer_uuid is not None:
        providers = providers.filter(uuid=customer_uuid)
    return providers
