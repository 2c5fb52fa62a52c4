"""The metrics tests' fleet, its broker answer, and a scraper on an allowed network."""

from typing import Any

import pytest

from marketplace.names import AgentServiceState
from tests.factories import CustomerFactory, OfferingFactory
from tests.kit.broker import mock_broker_snapshot
from tests.kit.fleet import Fleet
from tests.kit.metrics import URL


@pytest.fixture
def fleet(db) -> dict[str, Any]:
    """Offering HPC: alpha (ACTIVE, ERROR; connected; queues of 5 and 1 messages, 2
    consumers) and beta (IDLE; disconnected; 2 messages, no consumer). Offering Storage:
    gamma (ACTIVE; connected; empty queue, 1 consumer). A second offering also named HPC,
    of another customer: delta (no services; disconnected; 7 messages)."""
    hpc = OfferingFactory(name="HPC")
    storage = OfferingFactory(name="Storage")
    other_hpc = OfferingFactory(name="HPC", customer=CustomerFactory())
    plan: list[tuple[str, Any, list[str], bool, list[tuple[int, int]]]] = [
        (
            "alpha",
            hpc,
            [AgentServiceState.ACTIVE, AgentServiceState.ERROR],
            True,
            [(5, 1), (1, 1)],
        ),
        ("beta", hpc, [AgentServiceState.IDLE], False, [(2, 0)]),
        ("gamma", storage, [AgentServiceState.ACTIVE], True, [(0, 1)]),
        ("delta", other_hpc, [], False, [(7, 0)]),
    ]
    fleet = Fleet()
    for name, offering, states, is_connected, depths in plan:
        agent = fleet.add_agent(name, offering=offering, services=states)
        for object_type, (messages, consumers) in zip(("order", "resource"), depths, strict=False):
            fleet.add_queue(
                agent,
                object_type,
                messages=messages,
                consumers=consumers,
                connected_from=f"10.0.0.{len(fleet.connections) + 1}" if is_connected else None,
            )
    return {
        "hpc": hpc,
        "storage": storage,
        "other_hpc": other_hpc,
        "connections": fleet.connections,
        "queues": fleet.queues,
    }


@pytest.fixture
def answering_broker(fleet, broker):
    mock_broker_snapshot(broker, connections=fleet["connections"], queues=fleet["queues"])
    return broker


@pytest.fixture
def scraper(client, settings):
    """A scraper on an allow-listed network."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]

    def scrape(**extra: str) -> Any:
        return client.get(URL, REMOTE_ADDR="192.0.2.10", **extra)

    return scrape
