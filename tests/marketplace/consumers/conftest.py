"""Fixtures of the unified consumer queue tests."""

from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from marketplace.models import EventConsumer
from tests.marketplace.consumers.management import MANAGEMENT


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)


@pytest.fixture
def consumer_broker_cleanup(real_broker) -> Iterator[None]:
    """Remove the broker users of the consumers a real-broker test leaves behind (their
    owners' vhosts, with the queues, go with `real_broker`)."""
    yield
    auth = (settings.RABBITMQ_USER, settings.RABBITMQ_PASSWORD)
    for username in EventConsumer.objects.values_list("rmq_username", flat=True):
        requests.delete(f"{MANAGEMENT}/api/users/{username}", auth=auth, timeout=5)
