"""The connection-envelope world: two tenants' users and agents, and the writes the
observer and the agents make, at the times a FakeClock gives."""

from dataclasses import dataclass
from datetime import datetime

from rest_framework.test import APIClient

from agentstats.models import User
from marketplace.envelope.services import (
    acquire_observer_lease,
    record_connection_closed,
    record_connection_opened,
    record_observer_beat,
)
from marketplace.models import AgentConnectionState, AgentIdentity, Customer, EventSubscription
from rmq.events import ConnectionClosed, ConnectionOpened
from tests.factories import EventSubscriptionFactory
from tests.kit.clock import FakeClock

GET_CONNECTION = "/api/agents/get_connection/"
GET_STATS = "/api/agents/get_connection_stats/"
RECORD_DISPATCH = "/api/agents/record_dispatch/"
RECORD_HEARTBEAT = "/api/agents/record_heartbeat/"

NODE = "rabbit@broker-0"
THRESHOLDS = {
    "healthy_seen_seconds": 600.0,
    "offline_after_seconds": 1800.0,
    "degraded_window_seconds": 900.0,
    "flap_threshold": 5,
    "observer_stale_after_seconds": 60.0,
}
NOT_FOUND = {"detail": "No such agent.", "code": "not_found"}
NOT_AUTHENTICATED = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}
NOT_MANAGER = {"detail": "You do not manage this agent.", "code": "permission_denied"}


@dataclass(frozen=True)
class Tenants:
    customer_a: Customer
    customer_b: Customer
    owner_a: User
    creator_a: User
    owner_b: User
    outsider: User
    support: User
    staff: User
    agent_a: AgentIdentity
    agent_b: AgentIdentity

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)

    def agent(self, tenant: str) -> AgentIdentity:
        return {"a": self.agent_a, "b": self.agent_b}[tenant]

    def customer(self, tenant: str) -> Customer:
        return {"a": self.customer_a, "b": self.customer_b}[tenant]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post(client: APIClient, url: str, body: dict):
    return client.post(url, body, format="json")


def fetch_envelope(client: APIClient, agent: AgentIdentity) -> dict:
    response = post(client, GET_CONNECTION, {"instance_id": str(agent.uuid)})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    return response.json()["connection"]


def subscribe(agent: AgentIdentity) -> EventSubscription:
    return EventSubscriptionFactory(agent_identity=agent, user=agent.created_by)


def open_connection(
    subscription: EventSubscription,
    *,
    name: str,
    at: datetime,
    protocol: str = "Web STOMP 1.2",
    node: str = NODE,
) -> None:
    opened = record_connection_opened(
        ConnectionOpened(
            name=name,
            user=subscription.uuid.hex,
            vhost=subscription.user.uuid.hex,
            node=node,
            peer_host="10.0.0.7",
            protocol=protocol,
            connected_at=at,
        )
    )
    assert opened is True


def close_connection(name: str, *, at: datetime) -> None:
    assert record_connection_closed(ConnectionClosed(name=name, node=NODE, closed_at=at))


def observer_beat(clock: FakeClock, *, seconds_ago: float = 0, is_broker_available: bool = True):
    beat_as_active_observer(is_broker_available=is_broker_available, at=clock.ago(seconds_ago))


TEST_OBSERVER = "test-host:1:0badcafe"


def beat_as_active_observer(*, is_broker_available: bool, at: datetime) -> None:
    """Beat as the active observer does: holding the lease (taken if free)."""
    assert acquire_observer_lease(TEST_OBSERVER)
    record_observer_beat(holder=TEST_OBSERVER, is_broker_available=is_broker_available, at=at)


def connection_state(agent: AgentIdentity) -> AgentConnectionState | None:
    return AgentConnectionState.objects.filter(identity=agent).first()
