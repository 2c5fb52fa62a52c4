"""A fleet of agents built in the database, and the broker's picture of it."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import responses

from marketplace.models import AgentIdentity, EventSubscriptionQueue, Offering
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
)
from tests.kit.broker import (
    CONNECTED_AT,
    broker_connection_of,
    broker_queue_of,
    mock_broker_snapshot,
)


@dataclass
class Fleet:
    """Agents with their services, subscriptions and queues, made with the factories, and
    what the management API lists for them: `connections` and `queues` (see `mock`)."""

    connections: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)

    def add_agent(
        self,
        name: str | None = None,
        *,
        offering: Offering | None = None,
        services: Mapping[str, str] | Sequence[str] = (),
        **identity_fields: Any,
    ) -> AgentIdentity:
        """An agent (on a new offering unless given one) with its services: {name: state},
        or states alone; the factories name what is not named."""
        if name is not None:
            identity_fields["name"] = name
        if offering is not None:
            identity_fields["offering"] = offering
        agent = AgentIdentityFactory(**identity_fields)
        if isinstance(services, Mapping):
            for service_name, state in services.items():
                AgentServiceFactory(identity=agent, name=service_name, state=state)
        else:
            for state in services:
                AgentServiceFactory(identity=agent, state=state)
        return agent

    def add_queue(
        self,
        agent: AgentIdentity,
        object_type: str = "order",
        *,
        messages: int = 0,
        consumers: int = 0,
        connected_from: str | None = None,
        connected_at: datetime = CONNECTED_AT,
        is_on_broker: bool = True,
        **subscription_fields: Any,
    ) -> EventSubscriptionQueue:
        """A subscription of `agent` to `object_type` and its queue.

        The broker lists the queue with `messages` and `consumers` unless `is_on_broker` is
        false, and lists a running connection of the subscription from `connected_from`.
        """
        subscription = EventSubscriptionFactory(
            agent_identity=agent,
            observable_objects=[{"object_type": object_type}],
            **subscription_fields,
        )
        queue = EventSubscriptionQueueFactory(
            event_subscription=subscription, object_type=object_type
        )
        if is_on_broker:
            self.queues.append(broker_queue_of(queue, messages=messages, consumers=consumers))
        if connected_from is not None:
            self.connections.append(
                broker_connection_of(
                    subscription, peer_host=connected_from, connected_at=connected_at
                )
            )
        return queue

    def mock(self, broker: responses.RequestsMock) -> None:
        """Answer a snapshot with this fleet's connections and queues."""
        mock_broker_snapshot(broker, connections=self.connections, queues=self.queues)
