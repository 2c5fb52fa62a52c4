"""The registration tests' worlds: an owner's client, every role around two agents, and a
management API that accepts every provisioning call."""

from typing import Any

import pytest
import responses

from tests.factories import OfferingFactory, UserFactory
from tests.kit.broker import accept_provisioning, accept_teardown
from tests.kit.permission_matrix import World, build_agent


@pytest.fixture
def world(owner, offering, user, support_user, staff_user) -> World:
    creator: Any = UserFactory()
    foreign_offering: Any = OfferingFactory()
    foreign_creator: Any = UserFactory()
    return World(
        owner=owner,
        creator=creator,
        outsider=user,
        support=support_user,
        staff=staff_user,
        offering=offering,
        mine=build_agent(offering, creator),
        foreign=build_agent(foreign_offering, foreign_creator),
    )


@pytest.fixture
def provisioning_broker(broker: responses.RequestsMock) -> responses.RequestsMock:
    """A management API that accepts every provisioning and deletion call."""
    accept_provisioning(broker)
    accept_teardown(broker)
    return broker


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)
