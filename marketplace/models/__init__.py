"""The marketplace domain's rows, one module per part of it."""

from marketplace.models.agents import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    Customer,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from marketplace.models.base import TimestampedModel
from marketplace.models.connections import (
    AgentBrokerConnection,
    AgentConnectionEvent,
    AgentConnectionState,
    ObserverStatus,
)
from marketplace.models.consumers import BrokerUserRemoval, EventConsumer
from marketplace.models.housekeeping import BrokerOrphan
from marketplace.models.jobs import JobRun
from marketplace.models.logs import AgentLog

__all__ = [
    "AgentBrokerConnection",
    "AgentConnectionEvent",
    "AgentConnectionState",
    "AgentIdentity",
    "AgentLog",
    "AgentProcessor",
    "AgentService",
    "BrokerOrphan",
    "BrokerUserRemoval",
    "Customer",
    "EventConsumer",
    "EventSubscription",
    "EventSubscriptionQueue",
    "JobRun",
    "ObserverStatus",
    "Offering",
    "TimestampedModel",
]
