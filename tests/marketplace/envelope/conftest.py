"""The envelope API's world: two tenants, a stopped clock, an API client per role."""

from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.clock import FakeClock
from tests.kit.envelope import THRESHOLDS, Tenants


@pytest.fixture
def thresholds(settings) -> None:
    """The thresholds the envelope tests assert against, and no write throttle."""
    settings.AGENT_HEALTHY_SEEN_SECONDS = THRESHOLDS["healthy_seen_seconds"]
    settings.AGENT_OFFLINE_AFTER_SECONDS = THRESHOLDS["offline_after_seconds"]
    settings.AGENT_DEGRADED_WINDOW_SECONDS = THRESHOLDS["degraded_window_seconds"]
    settings.AGENT_FLAP_THRESHOLD = THRESHOLDS["flap_threshold"]
    settings.OBSERVER_STALE_AFTER_SECONDS = THRESHOLDS["observer_stale_after_seconds"]
    settings.AGENT_WRITE_THROTTLE_RATE = ""


@pytest.fixture
def clock(fake_clock, monkeypatch) -> FakeClock:
    """The fake clock on a whole second, also answering django.utils.timezone.now: the
    envelope code reads the time there."""
    fake_clock.current = fake_clock.current.replace(microsecond=0)
    monkeypatch.setattr(timezone, "now", fake_clock.now)
    return fake_clock


@pytest.fixture
def tenants(db, clock, thresholds) -> Tenants:
    """Tenants A and B, an owner and an agent each (A's agent created by a user who is not
    an owner); an outsider, support and staff."""
    owner_a, creator_a, owner_b = UserFactory(), UserFactory(), UserFactory()
    customer_a = CustomerFactory(owners=[owner_a])
    customer_b = CustomerFactory(owners=[owner_b])
    return Tenants(
        customer_a=customer_a,
        customer_b=customer_b,
        owner_a=owner_a,
        creator_a=creator_a,
        owner_b=owner_b,
        outsider=UserFactory(),
        support=UserFactory(is_support=True),
        staff=UserFactory(is_staff=True),
        agent_a=AgentIdentityFactory(
            offering=OfferingFactory(customer=customer_a), created_by=creator_a
        ),
        agent_b=AgentIdentityFactory(
            offering=OfferingFactory(customer=customer_b), created_by=owner_b
        ),
    )


@pytest.fixture
def client_as(tenants, client_for) -> Callable[[str], APIClient]:
    """An API client for a role of the tenants world ('anonymous' has no credentials)."""

    def make(role: str) -> APIClient:
        user = tenants.user(role)
        return APIClient() if user is None else client_for(user)

    return make
