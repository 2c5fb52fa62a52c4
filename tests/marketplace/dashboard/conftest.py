"""The dashboard's fleet (and the broker mocked with exactly that) and a superuser."""

import pytest

from marketplace.names import AgentServiceState
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.dashboard import CONNECTED_AT
from tests.kit.fleet import Fleet


@pytest.fixture
def fleet(db, broker):
    """alpha (connected from 10.1.2.3, consumed order queue, ACTIVE + ERROR services) at
    Uni/HPC; beta (disconnected, 5 messages in a resource queue nobody reads, IDLE) at
    Lab/Cloud; the broker mocked with exactly that."""
    owner = UserFactory()
    uni = CustomerFactory(name="Uni", owners=[owner])
    lab = CustomerFactory(name="Lab", owners=[owner])
    hpc = OfferingFactory(customer=uni, name="HPC")
    cloud = OfferingFactory(customer=lab, name="Cloud")
    fleet = Fleet()
    alpha = fleet.add_agent(
        "alpha",
        offering=hpc,
        version="1.0.0",
        created_by=owner,
        services={"orders": AgentServiceState.ACTIVE, "sync": AgentServiceState.ERROR},
    )
    beta = fleet.add_agent(
        "beta",
        offering=cloud,
        version="0.9.0",
        created_by=owner,
        services={"orders": AgentServiceState.IDLE},
    )
    alpha_queue = fleet.add_queue(
        alpha,
        "order",
        messages=2,
        consumers=1,
        connected_from="10.1.2.3",
        connected_at=CONNECTED_AT,
    )
    beta_queue = fleet.add_queue(beta, "resource", messages=5, consumers=0)
    fleet.mock(broker)
    return {
        "uni": uni,
        "lab": lab,
        "hpc": hpc,
        "alpha": alpha,
        "beta": beta,
        "alpha_queue": alpha_queue,
        "beta_queue": beta_queue,
    }


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)
