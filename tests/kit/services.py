"""The real services a test may need, how its tests are marked, and what a test does when
one is missing."""

import os
from collections.abc import Iterable
from typing import Protocol

import pytest
import requests
from django.conf import settings

from tests.kit.broker import MANAGEMENT

IS_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The fixtures that need a real service or start a server, and the marker each gives the
# tests using it, directly or through other fixtures. `make unit` deselects these markers.
SERVICE_FIXTURES = {
    "real_broker": "broker",
    "dedicated_broker": "broker",
    "broker_cluster": "broker",
    "real_postgres": "postgres",
    "redis_cache": "redis",
    "browser": "browser",
    "live_server": "live_server",
    "server_without_database": "live_server",
    "prometheus_binaries": "prometheus",
}
SERVICE_MARKERS = tuple(sorted(set(SERVICE_FIXTURES.values())))


class CollectedTest(Protocol):
    fixturenames: list[str]

    def add_marker(self, marker: str) -> None: ...


def mark_service_tests(items: Iterable[CollectedTest]) -> None:
    """Give each test the markers of the service fixtures it uses."""
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = SERVICE_FIXTURES.get(fixture)
            if marker is not None:
                item.add_marker(marker)


def require_service(is_available: bool, reason: str) -> None:
    """Fail in CI, skip locally, when a real service the test needs is missing."""
    if is_available:
        return
    if IS_CI:
        pytest.fail(f"{reason} (CI=true: integration tests must not be skipped)")
    pytest.skip(reason)


def management_api_answers() -> bool:
    """Whether the real RabbitMQ management API answers with the configured credentials."""
    try:
        response = requests.get(
            f"{MANAGEMENT}/api/overview",
            auth=(settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD),
            timeout=3,
        )
    except requests.RequestException:
        return False
    return response.status_code == 200
