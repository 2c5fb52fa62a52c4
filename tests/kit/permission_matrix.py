"""Permission matrices of the site-agent API: a world of roles and agents, the calls, and
what must hold after each.

Roles: anonymous, an outsider (authenticated, no relation to the agent), support, staff,
an owner of the offering's customer, and the user who created the identity without being
an owner (a former owner: having created it grants nothing). Each matrix also pins list
scoping: a second agent of another customer is seen only by staff and support."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from rest_framework.test import APIClient

from agentstats.models import User
from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
    Offering,
)
from tests.factories import (
    AgentIdentityFactory,
    AgentProcessorFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
)
from tests.kit.api import IDENTITIES, SERVICES, SUBSCRIPTIONS

ROLES = ("anonymous", "outsider", "support", "staff", "owner", "creator")


@dataclass(frozen=True)
class Agent:
    """One agent with a row of every kind hanging off it."""

    identity: AgentIdentity
    service: AgentService
    processor: AgentProcessor
    subscription: EventSubscription
    queue: EventSubscriptionQueue


@dataclass(frozen=True)
class World:
    owner: User
    creator: User
    outsider: User
    support: User
    staff: User
    offering: Offering
    mine: Agent
    foreign: Agent

    def visible(self, role: str, kind: str) -> set[str]:
        """uuids of `kind` rows a list should show to `role`."""
        agents = {
            "outsider": [],
            "owner": [self.mine],
            "creator": [],
            "support": [self.mine, self.foreign],
            "staff": [self.mine, self.foreign],
        }[role]
        return {str(getattr(agent, kind).uuid) for agent in agents}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Action:
    """A request and what must hold after it (given whether it was allowed)."""

    call: Callable[[World], Call]
    then: Callable[[World, Any, str], None]


def build_agent(offering: Offering, creator: User) -> Agent:
    identity: Any = AgentIdentityFactory(offering=offering, created_by=creator)
    service: Any = AgentServiceFactory(identity=identity)
    subscription: Any = EventSubscriptionFactory(agent_identity=identity)
    processor: Any = AgentProcessorFactory(service=service)
    queue: Any = EventSubscriptionQueueFactory(event_subscription=subscription)
    return Agent(identity, service, processor, subscription, queue)


def client_of_role(role: str, world: World, client_for: Callable[[User], APIClient]) -> APIClient:
    if role == "anonymous":
        return APIClient()
    return client_for(getattr(world, role))


def send(client: APIClient, call: Call) -> Any:
    if call.body is None:
        return getattr(client, call.method)(call.path)
    return getattr(client, call.method)(call.path, call.body, format="json")


def matrix(actions: dict[str, Action], expected: Mapping[str, tuple[int, ...]]) -> list[Any]:
    return [
        pytest.param(name, role, code, id=f"{name}-{role}")
        for name in actions
        for role, code in zip(ROLES, expected[name], strict=True)
    ]


def check_matrix_case(
    actions: dict[str, Action],
    action: str,
    role: str,
    expected_status: int,
    *,
    world: World,
    client_for: Callable[[User], APIClient],
    broker: responses.RequestsMock,
) -> None:
    # given
    client = client_of_role(role, world, client_for)
    # when
    response = send(client, actions[action].call(world))
    # then
    assert response.status_code == expected_status, response.content
    if expected_status == 401:
        assert response.json() == {
            "detail": "Authentication credentials were not provided.",
            "code": "not_authenticated",
        }
    if expected_status == 403:
        assert response.json()["code"] == "permission_denied"
    if expected_status >= 400:
        assert len(broker.calls) == 0
    actions[action].then(world, response, role)


def lists(kind: str) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        if response.status_code == 200:
            assert {item["uuid"] for item in response.json()} == world.visible(role, kind)

    return then


def retrieves(kind: str) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        if response.status_code == 200:
            assert response.json()["uuid"] == str(getattr(world.mine, kind).uuid)

    return then


def writes(took_effect: Callable[[World], bool]) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        assert took_effect(world) is (response.status_code < 300)

    return then


def identity_path(world: World, suffix: str = "") -> str:
    return f"{IDENTITIES}{world.mine.identity.uuid.hex}/{suffix}"


def service_path(world: World, suffix: str = "") -> str:
    return f"{SERVICES}{world.mine.service.uuid.hex}/{suffix}"


def subscription_path(world: World, suffix: str = "") -> str:
    return f"{SUBSCRIPTIONS}{world.mine.subscription.uuid.hex}/{suffix}"
