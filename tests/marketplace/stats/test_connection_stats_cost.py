"""What a stats request costs: the same SQL queries and the same bulk broker calls for 1 and
for 50 agents."""

from typing import Any

import responses
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.names import AgentServiceState
from tests.kit.api import STATS_URL
from tests.kit.broker import SNAPSHOT_CALLS
from tests.kit.fleet import Fleet

# SQL queries of one stats request: the token, the agents with offering and creator, their
# services, their subscriptions with owner, the subscriptions' queues, the queues' offerings.
STATS_QUERIES = 6  # token, agents, services, subscriptions, queues, event consumers


def _add_agents(fleet: Fleet, offering: Any, owner: Any, count: int, *, start: int) -> None:
    """Agents with 3 services, 2 subscriptions and 2 queues each, every subscription
    connected and every queue holding a message."""
    for number in range(start, start + count):
        agent = fleet.add_agent(
            f"agent-{number:03d}",
            offering=offering,
            created_by=owner,
            services=dict.fromkeys(("orders", "membership", "usage"), AgentServiceState.ACTIVE),
        )
        for object_type in ("order", "resource"):
            fleet.add_queue(
                agent,
                object_type,
                messages=1,
                consumers=1,
                connected_from=f"10.0.0.{len(fleet.connections) + 1}",
            )


def _ask_with_every_subscription_connected(
    client: Any, broker: responses.RequestsMock, fleet: Fleet
) -> tuple[Any, int, int]:
    broker.reset()
    cache.clear()  # each request must ask the broker, not reuse the shared snapshot
    fleet.mock(broker)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(STATS_URL)
    return response, len(queries), len(broker.calls)


def test_stats_cost_the_same_queries_and_broker_calls_for_1_and_50_agents(
    owner, offering, staff_user, client_for, broker
):
    # given
    client = client_for(staff_user)
    fleet = Fleet()
    _add_agents(fleet, offering, owner, 1, start=0)

    # when
    one, one_queries, one_calls = _ask_with_every_subscription_connected(client, broker, fleet)
    _add_agents(fleet, offering, owner, 49, start=1)
    fifty, fifty_queries, fifty_calls = _ask_with_every_subscription_connected(
        client, broker, fleet
    )

    # then
    assert (one.status_code, fifty.status_code) == (200, 200)
    assert one.json()["summary"]["connected_agents"] == 1
    assert fifty.json()["summary"]["connected_agents"] == 50
    assert fifty.json()["summary"]["total_queued_messages"] == 100
    assert all(len(agent["services"]) == 3 for agent in fifty.json()["agents"])
    assert one_queries == fifty_queries == STATS_QUERIES
    assert one_calls == fifty_calls == SNAPSHOT_CALLS
