"""Fixtures of the unified consumer queue tests."""

from collections.abc import Iterator

import pytest

from tests.marketplace.consumers.live_broker import delete_consumer_broker_users


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)


@pytest.fixture
def consumer_broker_cleanup(real_broker) -> Iterator[None]:
    """The real broker, without the consumers' users once the test is over."""
    yield
    delete_consumer_broker_users()
