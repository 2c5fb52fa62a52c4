"""The real services a test may need, and what a test does when one is missing."""

import os

import pytest
import requests
from django.conf import settings

from tests.kit.broker import MANAGEMENT

IS_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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
