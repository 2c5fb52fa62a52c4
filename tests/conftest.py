"""Shared fixtures: users by role, API clients, a mocked broker, a stopped clock and the real
services; every test that uses a real service is marked with it."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.conf import settings
from django.core.cache import cache
from django.core.servers.basehttp import WSGIServer
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agentstats.models import User
from marketplace.models import EventConsumer, EventSubscription
from marketplace.stats.answers import forget_answers_in_memory, join_answer_builds
from rmq import snapshot
from rmq.clock import use_clock
from rmq.snapshot_cache import join_refresh
from tests.factories import (
    AgentIdentityFactory,
    CustomerFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.clock import ClockDatetime, FakeClock
from tests.kit.services import (
    MANAGEMENT,
    management_api_answers,
    mark_service_tests,
    require_service,
)

# The live server's listen backlog is 10; the concurrency tests open 50 connections at once.
WSGIServer.request_queue_size = 128


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a real service (see kit/services.SERVICE_FIXTURES)."""
    mark_service_tests(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A broker snapshot refresh a test started ends with the test, while its mocks and
    database are still there."""
    try:
        return (yield)
    finally:
        assert join_refresh(timeout=90), "a broker snapshot refresh outlived its test"
        assert join_answer_builds(timeout=90), "a stats answer build outlived its test"


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> Iterator[None]:
    """Cached broker snapshots, stats answers and throttle counters never leak between
    tests; a cold stats request waits for its fetch (tests of the bound set their own)."""
    settings.BROKER_SNAPSHOT_WAIT = 60
    cache.clear()
    forget_answers_in_memory()
    yield
    cache.clear()
    forget_answers_in_memory()


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """The app's wall clock (rmq.clock), stopped at the real time of now; tests move it."""
    clock = FakeClock(datetime.now(UTC))
    with use_clock(clock):
        yield clock


@pytest.fixture
def snapshot_clock(fake_clock, monkeypatch) -> FakeClock:
    """The fake clock, also stamping the broker snapshots' taken_at."""
    monkeypatch.setattr(snapshot, "datetime", ClockDatetime)
    return fake_clock


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def _client_for(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """Return a function that gives an API client authenticated with a user's token."""
    return _client_for


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def support_user(db):
    return UserFactory(is_support=True)


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def customer(owner):
    return CustomerFactory(owners=[owner])


@pytest.fixture
def offering(customer):
    return OfferingFactory(customer=customer)


@pytest.fixture
def identity(offering, owner):
    return AgentIdentityFactory(offering=offering, created_by=owner)


@pytest.fixture
def broker() -> Iterator[responses.RequestsMock]:
    """The management API mocked at the HTTP level; unexpected calls fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def real_broker(db) -> Iterator[str]:
    """The real RabbitMQ; vhosts and users the test's rows name are removed afterwards."""
    require_service(management_api_answers(), f"RabbitMQ management API at {MANAGEMENT}")
    yield MANAGEMENT
    auth = (settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD)
    for subscription in EventSubscription.objects.all():
        requests.delete(f"{MANAGEMENT}/api/users/{subscription.uuid.hex}", auth=auth, timeout=5)
    for username in EventConsumer.objects.values_list("rmq_username", flat=True):
        requests.delete(f"{MANAGEMENT}/api/users/{username}", auth=auth, timeout=5)
    for owner_user in User.objects.all():
        requests.delete(f"{MANAGEMENT}/api/vhosts/{owner_user.uuid.hex}", auth=auth, timeout=5)


@pytest.fixture
def real_postgres(db) -> None:
    """The test database must be the real PostgreSQL."""
    require_service(
        connection.vendor == "postgresql",
        f"needs PostgreSQL; DATABASE_URL points at {connection.vendor}",
    )
