"""Who may do what on the site-agent API: one permission matrix per endpoint group.

Roles: anonymous, an outsider (authenticated, no relation to the agent), support, staff,
an owner of the offering's customer, and the user who created the identity without being
an owner. Each matrix also pins list scoping: a second agent of another customer is seen
only by staff and support.
"""

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
    OfferingFactory,
    UserFactory,
)
from tests.kit.broker import accept_provisioning, management_url

ROLES = ("anonymous", "outsider", "support", "staff", "owner", "creator")
IDENTITIES = "/api/marketplace-site-agent-identities/"
SERVICES = "/api/marketplace-site-agent-services/"
PROCESSORS = "/api/marketplace-site-agent-processors/"
SUBSCRIPTIONS = "/api/event-subscriptions/"
QUEUES = "/api/event-subscription-queues/"


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
            "creator": [self.mine],
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


def _build_agent(offering: Offering, creator: User) -> Agent:
    identity: Any = AgentIdentityFactory(offering=offering, created_by=creator)
    service: Any = AgentServiceFactory(identity=identity)
    subscription: Any = EventSubscriptionFactory(agent_identity=identity)
    processor: Any = AgentProcessorFactory(service=service)
    queue: Any = EventSubscriptionQueueFactory(event_subscription=subscription)
    return Agent(identity, service, processor, subscription, queue)


@pytest.fixture
def world(owner, offering, user, support_user, staff_user) -> World:
    creator: Any = UserFactory()
    foreign_offering: Any = OfferingFactory()
    foreign_creator: Any = UserFactory()
    return World(
        owner=owner,
        creator=creator,
        outsider=user,
        support=support_user,
        staff=staff_user,
        offering=offering,
        mine=_build_agent(offering, creator),
        foreign=_build_agent(foreign_offering, foreign_creator),
    )


@pytest.fixture
def provisioning_broker(broker: responses.RequestsMock) -> responses.RequestsMock:
    """A management API that accepts every provisioning call."""
    accept_provisioning(broker)
    broker.add(responses.DELETE, management_url("users"), status=204)
    return broker


def _client(role: str, world: World, client_for: Callable[[User], APIClient]) -> APIClient:
    if role == "anonymous":
        return APIClient()
    return client_for(getattr(world, role))


def _send(client: APIClient, call: Call) -> Any:
    if call.body is None:
        return getattr(client, call.method)(call.path)
    return getattr(client, call.method)(call.path, call.body, format="json")


def _matrix(actions: dict[str, Action], expected: Mapping[str, tuple[int, ...]]) -> list[Any]:
    return [
        pytest.param(name, role, code, id=f"{name}-{role}")
        for name in actions
        for role, code in zip(ROLES, expected[name], strict=True)
    ]


def _check_matrix_case(
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
    client = _client(role, world, client_for)
    # when
    response = _send(client, actions[action].call(world))
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


# --- then-checks ------------------------------------------------------------------------


def _lists(kind: str) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        if response.status_code == 200:
            assert {item["uuid"] for item in response.json()} == world.visible(role, kind)

    return then


def _retrieves(kind: str) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        if response.status_code == 200:
            assert response.json()["uuid"] == str(getattr(world.mine, kind).uuid)

    return then


def _writes(took_effect: Callable[[World], bool]) -> Callable[[World, Any, str], None]:
    def then(world: World, response: Any, role: str) -> None:
        assert took_effect(world) is (response.status_code < 300)

    return then


def _identity_version(world: World) -> str:
    return AgentIdentity.objects.get(pk=world.mine.identity.pk).version


# --- identities -------------------------------------------------------------------------


def _identity_path(world: World, suffix: str = "") -> str:
    return f"{IDENTITIES}{world.mine.identity.uuid.hex}/{suffix}"


IDENTITY_ACTIONS = {
    "list": Action(lambda w: Call("get", IDENTITIES), _lists("identity")),
    "create": Action(
        lambda w: Call(
            "post",
            IDENTITIES,
            {"offering": w.offering.uuid.hex, "name": "agent-new", "version": "1.0.0"},
        ),
        _writes(lambda w: AgentIdentity.objects.filter(name="agent-new").exists()),
    ),
    "retrieve": Action(lambda w: Call("get", _identity_path(w)), _retrieves("identity")),
    "update": Action(
        lambda w: Call(
            "put",
            _identity_path(w),
            {
                "offering": str(w.offering.uuid),
                "name": w.mine.identity.name,
                "version": "9.9.9",
            },
        ),
        _writes(lambda w: _identity_version(w) == "9.9.9"),
    ),
    "partial_update": Action(
        lambda w: Call("patch", _identity_path(w), {"version": "2.0.0"}),
        _writes(lambda w: _identity_version(w) == "2.0.0"),
    ),
    "destroy": Action(
        lambda w: Call("delete", _identity_path(w)),
        _writes(lambda w: not AgentIdentity.objects.filter(pk=w.mine.identity.pk).exists()),
    ),
    "register_service": Action(
        lambda w: Call(
            "post",
            _identity_path(w, "register_service/"),
            {"name": "membership_sync", "mode": "membership_sync"},
        ),
        _writes(
            lambda w: AgentService.objects.filter(
                identity=w.mine.identity, name="membership_sync"
            ).exists()
        ),
    ),
    "register_event_subscription": Action(
        lambda w: Call(
            "post",
            _identity_path(w, "register_event_subscription/"),
            {"observable_object_type": "resource", "description": "resources"},
        ),
        _writes(lambda w: w.mine.identity.event_subscriptions.count() == 2),
    ),
}

IDENTITY_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator
    "list": (401, 200, 200, 200, 200, 200),
    "create": (401, 403, 403, 201, 201, 403),
    "retrieve": (401, 403, 200, 200, 200, 200),
    "update": (401, 403, 403, 200, 200, 200),
    "partial_update": (401, 403, 403, 200, 200, 200),
    "destroy": (401, 403, 403, 204, 204, 204),
    "register_service": (401, 403, 403, 201, 201, 201),
    "register_event_subscription": (401, 403, 403, 201, 201, 201),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"),
    _matrix(IDENTITY_ACTIONS, IDENTITY_EXPECTED),
)
def test_identity_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    _check_matrix_case(
        IDENTITY_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


# --- services ---------------------------------------------------------------------------


def _service_path(world: World, suffix: str = "") -> str:
    return f"{SERVICES}{world.mine.service.uuid.hex}/{suffix}"


SERVICE_ACTIONS = {
    "list": Action(lambda w: Call("get", SERVICES), _lists("service")),
    "retrieve": Action(lambda w: Call("get", _service_path(w)), _retrieves("service")),
    "register_processor": Action(
        lambda w: Call(
            "post",
            _service_path(w, "register_processor/"),
            {"name": "NewProcessor", "backend_type": "slurm", "backend_version": "23.02"},
        ),
        _writes(
            lambda w: AgentProcessor.objects.filter(
                service=w.mine.service, name="NewProcessor"
            ).exists()
        ),
    ),
    "set_statistics": Action(
        lambda w: Call("post", _service_path(w, "set_statistics/"), {"statistics": {"orders": 3}}),
        _writes(
            lambda w: AgentService.objects.get(pk=w.mine.service.pk).statistics == {"orders": 3}
        ),
    ),
}

SERVICE_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 200),
    "register_processor": (401, 403, 403, 201, 201, 201),
    "set_statistics": (401, 403, 403, 200, 200, 200),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), _matrix(SERVICE_ACTIONS, SERVICE_EXPECTED)
)
def test_service_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    _check_matrix_case(
        SERVICE_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


# --- processors -------------------------------------------------------------------------

PROCESSOR_ACTIONS = {
    "list": Action(lambda w: Call("get", PROCESSORS), _lists("processor")),
    "retrieve": Action(
        lambda w: Call("get", f"{PROCESSORS}{w.mine.processor.uuid.hex}/"),
        _retrieves("processor"),
    ),
}

PROCESSOR_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 200),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), _matrix(PROCESSOR_ACTIONS, PROCESSOR_EXPECTED)
)
def test_processor_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    _check_matrix_case(
        PROCESSOR_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


# --- event subscriptions ----------------------------------------------------------------


def _subscription_path(world: World, suffix: str = "") -> str:
    return f"{SUBSCRIPTIONS}{world.mine.subscription.uuid.hex}/{suffix}"


SUBSCRIPTION_ACTIONS = {
    "list": Action(lambda w: Call("get", SUBSCRIPTIONS), _lists("subscription")),
    "retrieve": Action(lambda w: Call("get", _subscription_path(w)), _retrieves("subscription")),
    "destroy": Action(
        lambda w: Call("delete", _subscription_path(w)),
        _writes(lambda w: not EventSubscription.objects.filter(pk=w.mine.subscription.pk).exists()),
    ),
    "create_queue": Action(
        lambda w: Call(
            "post",
            _subscription_path(w, "create_queue/"),
            {"offering_uuid": w.offering.uuid.hex, "object_type": "resource"},
        ),
        _writes(
            lambda w: EventSubscriptionQueue.objects.filter(
                event_subscription=w.mine.subscription, object_type="resource"
            ).exists()
        ),
    ),
}

SUBSCRIPTION_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 200),
    "destroy": (401, 403, 403, 204, 204, 204),
    "create_queue": (401, 403, 403, 201, 201, 201),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), _matrix(SUBSCRIPTION_ACTIONS, SUBSCRIPTION_EXPECTED)
)
def test_event_subscription_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    _check_matrix_case(
        SUBSCRIPTION_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


# --- event subscription queues ----------------------------------------------------------

QUEUE_ACTIONS = {
    "list": Action(lambda w: Call("get", QUEUES), _lists("queue")),
    "retrieve": Action(
        lambda w: Call("get", f"{QUEUES}{w.mine.queue.uuid.hex}/"), _retrieves("queue")
    ),
}

QUEUE_EXPECTED = {
    # anonymous, outsider, support, staff, owner, creator
    "list": (401, 200, 200, 200, 200, 200),
    "retrieve": (401, 403, 200, 200, 200, 200),
}


@pytest.mark.parametrize(
    ("action", "role", "expected_status"), _matrix(QUEUE_ACTIONS, QUEUE_EXPECTED)
)
def test_event_subscription_queue_endpoints_permission_matrix(
    action, role, expected_status, world, client_for, provisioning_broker
):
    _check_matrix_case(
        QUEUE_ACTIONS,
        action,
        role,
        expected_status,
        world=world,
        client_for=client_for,
        broker=provisioning_broker,
    )


# --- authentication and list scoping ----------------------------------------------------


def test_request_with_an_unknown_token_is_unauthorized(world):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}
    assert response["WWW-Authenticate"] == "Token"


def test_inactive_users_token_is_unauthorized(world, client_for):
    # given an owner whose account was deactivated
    client = client_for(world.owner)
    User.objects.filter(pk=world.owner.pk).update(is_active=False)

    # when
    response = client.get(_identity_path(world))

    # then
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_owner_lists_only_agents_of_its_customers(world, client_for):
    # given an owner whose customer has one agent, and another customer's agent
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 200
    assert [item["uuid"] for item in response.json()] == [str(world.mine.identity.uuid)]


def test_owner_of_two_customers_lists_the_agents_of_both(world, client_for):
    # given the owner also owns the foreign agent's customer
    world.foreign.identity.offering.customer.owners.add(world.owner)
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES)

    # then
    assert response.status_code == 200
    assert {item["uuid"] for item in response.json()} == {
        str(world.mine.identity.uuid),
        str(world.foreign.identity.uuid),
    }


def test_name_filter_does_not_reveal_other_customers_agents(world, client_for):
    # given an owner who knows another customer's agent name
    client = client_for(world.owner)

    # when
    response = client.get(IDENTITIES, {"name": world.foreign.identity.name})

    # then
    assert response.status_code == 200
    assert response.json() == []
