"""Fixtures of the unified consumer queue tests."""

import pytest


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)


@pytest.fixture
def consumer_broker_cleanup(real_broker) -> None:
    """The real broker; `real_broker` removes the consumers' users once the test is over."""
