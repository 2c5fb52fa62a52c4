"""The stats tests' fleets: the rows behind the captured broker responses, and the fleet
the `connection_stats` command lists."""

from datetime import UTC, datetime

import pytest

from marketplace.names import AgentServiceState
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.broker import (
    CAPTURED_AMQP_SUBSCRIPTION,
    CAPTURED_OFFERING,
    CAPTURED_OWNER,
    CAPTURED_STOMP_SUBSCRIPTION,
    mock_broker_snapshot,
)
from tests.kit.fleet import Fleet


@pytest.fixture
def captured_fleet(db):
    """The rows behind the captured responses plus a disconnected agent elsewhere.

    alpha: offering 0120… of owner 9a2b…, subscriptions 18b4… (AMQP, resource queue with 5
    messages and no consumer) and 0233… (Web STOMP without stats yet, consumed order queue).
    beta: no creator, one subscription without a connection and a queue the broker lacks.
    """
    owner = UserFactory(uuid=CAPTURED_OWNER, first_name="Ada", last_name="Lovelace")
    offering = OfferingFactory(
        uuid=CAPTURED_OFFERING, name="HPC", customer=CustomerFactory(owners=[owner])
    )
    fleet = Fleet()
    alpha = fleet.add_agent(
        "alpha",
        offering=offering,
        created_by=owner,
        services={"orders": AgentServiceState.ACTIVE, "sync": AgentServiceState.ERROR},
    )
    fleet.add_queue(alpha, "resource", uuid=CAPTURED_AMQP_SUBSCRIPTION)
    fleet.add_queue(alpha, "order", uuid=CAPTURED_STOMP_SUBSCRIPTION)

    beta = fleet.add_agent("beta", created_by=None)
    missing = fleet.add_queue(beta, "order", user=UserFactory())
    lonely = missing.event_subscription
    return {"owner": owner, "alpha": alpha, "beta": beta, "lonely": lonely, "missing": missing}


@pytest.fixture
def command_fleet(db):
    """On offering HPC: alpha-login (ACTIVE and ERROR services; two subscriptions connected
    from 10.0.0.5 and 10.0.0.6; 5 + 1 queued) and beta-batch (IDLE, disconnected, 2
    queued). On another customer's offering Storage: gamma-store (no services, connected
    from 10.0.0.7, nothing queued)."""
    hpc = OfferingFactory(name="HPC")
    storage = OfferingFactory(name="Storage", customer=CustomerFactory())
    fleet = Fleet()
    alpha = fleet.add_agent(
        "alpha-login",
        offering=hpc,
        services={"orders": AgentServiceState.ACTIVE, "sync": AgentServiceState.ERROR},
    )
    fleet.add_queue(
        alpha,
        "order",
        messages=5,
        consumers=1,
        connected_from="10.0.0.5",
        connected_at=datetime(2026, 11, 24, 6, 44, 28, tzinfo=UTC),
    )
    fleet.add_queue(
        alpha,
        "resource",
        messages=1,
        consumers=1,
        connected_from="10.0.0.6",
        connected_at=datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC),
    )
    beta = fleet.add_agent("beta-batch", offering=hpc, services={"batch": AgentServiceState.IDLE})
    fleet.add_queue(beta, "order", messages=2, consumers=0)
    gamma = fleet.add_agent("gamma-store", offering=storage)
    fleet.add_queue(
        gamma,
        "order",
        messages=0,
        consumers=1,
        connected_from="10.0.0.7",
        connected_at=datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC),
    )
    return {
        "hpc": hpc,
        "storage": storage,
        "connections": fleet.connections,
        "queues": fleet.queues,
    }


@pytest.fixture
def answering_broker(command_fleet, broker):
    mock_broker_snapshot(
        broker, connections=command_fleet["connections"], queues=command_fleet["queues"]
    )
    return broker
