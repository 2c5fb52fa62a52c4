"""Concurrent record_dispatch calls leave exact counters (the real PostgreSQL, over HTTP)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from rest_framework.authtoken.models import Token

from marketplace.models import AgentConnectionState
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory

THREADS = 50  # PostgreSQL allows 100 connections; the live server holds one per request
CALLS = 1000
BASE = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


def is_failure(index: int) -> bool:
    """Three calls in every ten fail: 300 of 1,000, the last of them call 992."""
    return index % 10 < 3


def dispatch_body(instance_id: str, index: int) -> dict:
    body = {
        "instance_id": instance_id,
        "succeeded": not is_failure(index),
        "occurred_at": (BASE + timedelta(seconds=index)).isoformat(),
    }
    if is_failure(index):
        body["error"] = f"failure {index}"
    return body


@pytest.fixture
def owned_agent(transactional_db, real_postgres, settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    owner = UserFactory()
    identity = AgentIdentityFactory(
        offering=OfferingFactory(customer=CustomerFactory(owners=[owner])), created_by=owner
    )
    return identity, Token.objects.get(user=owner).key


def test_1000_concurrent_dispatch_records_leave_exact_counts(live_server, owned_agent):
    # given
    identity, token = owned_agent
    url = f"{live_server.url}/api/agents/record_dispatch/"
    barrier = threading.Barrier(THREADS)

    def record(index: int) -> int:
        if index < THREADS:
            barrier.wait(timeout=30)
        response = requests.post(
            url,
            json=dispatch_body(str(identity.uuid), index),
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        return response.status_code

    # when
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        codes = list(pool.map(record, range(CALLS)))

    # then
    assert codes == [204] * CALLS
    state = AgentConnectionState.objects.get(identity=identity)
    assert (state.dispatches_succeeded, state.dispatches_failed) == (700, 300)
    assert state.last_dispatch_at == BASE + timedelta(seconds=999)
    assert state.last_dispatch_failed_at == BASE + timedelta(seconds=992)
    assert AgentConnectionState.objects.filter(identity=identity).count() == 1
