"""Where a local simulated fleet registers: its owner, API token and offering.

For local use only: it writes to this process's database, which must be the one the API
server uses. A remote run passes its token and offering instead.
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import Customer, Offering
from marketplace.simulator.agent import SimulationError

SIMULATED_CUSTOMER_NAME = "Simulated customer"
SIMULATED_OFFERING_NAME = "Simulated offering"


@dataclass(frozen=True)
class SimulationTarget:
    """Whose token the fleet registers with, and on which offering."""

    token: str
    offering_uuid: str


def prepare_local_target(username: str, *, offering_uuid: UUID | None) -> SimulationTarget:
    """Get or create the owner, its API token and (unless given) its simulated offering.

    For local use only: it writes to this process's database, which must be the one the
    API server uses.
    """
    with transaction.atomic():
        owner, _ = User.objects.get_or_create(
            username=username, defaults={"first_name": "Simulated", "last_name": "Owner"}
        )
        token, _ = Token.objects.get_or_create(user=owner)
        if offering_uuid is not None:
            offering = Offering.objects.filter(uuid=offering_uuid).first()
            if offering is None:
                raise SimulationError(f"No offering with uuid {offering_uuid}.")
        else:
            offering = _get_or_create_simulated_offering(owner)
    return SimulationTarget(token=token.key, offering_uuid=str(offering.uuid))


def _get_or_create_simulated_offering(owner: User) -> Offering:
    customer = Customer.objects.filter(name=SIMULATED_CUSTOMER_NAME, owners=owner).first()
    if customer is None:
        customer = Customer.objects.create(name=SIMULATED_CUSTOMER_NAME)
        customer.owners.add(owner)
    offering, _ = Offering.objects.get_or_create(name=SIMULATED_OFFERING_NAME, customer=customer)
    return offering
