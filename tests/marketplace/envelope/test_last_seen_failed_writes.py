"""last_seen on object routes: only a write that succeeded refreshes it; a refused one
(400, 403, 409, 503) is no sign of a working agent."""

import pytest

from marketplace.envelope.services import touch_agent_last_seen
from tests.factories import AgentServiceFactory
from tests.kit.api import IDENTITIES, SERVICES
from tests.kit.envelope import connection_state, post


def _bad_statistics(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(client, f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": "x"})


def _too_deep_statistics(client, agent):
    service = AgentServiceFactory(identity=agent)
    body = '{"statistics": {"a": ' + "[" * 500 + "]" * 500 + "}}"
    return client.post(
        f"{SERVICES}{service.uuid.hex}/set_statistics/", body, content_type="application/json"
    )


def _processor_without_name(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(client, f"{SERVICES}{service.uuid.hex}/register_processor/", {"name": ""})


def _service_without_name(client, agent):
    return post(client, f"{IDENTITIES}{agent.uuid.hex}/register_service/", {})


def _patch_with_unknown_offering(client, agent):
    return client.patch(f"{IDENTITIES}{agent.uuid.hex}/", {"offering": "0" * 32}, format="json")


def _subscription_of_unknown_type(client, agent):
    return post(
        client,
        f"{IDENTITIES}{agent.uuid.hex}/register_event_subscription/",
        {"observable_object_type": "invoice"},
    )


@pytest.mark.parametrize(
    "call",
    [
        _bad_statistics,
        _too_deep_statistics,
        _processor_without_name,
        _service_without_name,
        _patch_with_unknown_offering,
        _subscription_of_unknown_type,
    ],
    ids=lambda call: call.__name__.lstrip("_"),
)
def test_a_refused_object_route_write_does_not_refresh_last_seen(tenants, client_as, clock, call):
    # given the agent was seen a minute ago
    touch_agent_last_seen(tenants.agent_a, at=clock.now())
    seen = clock.now()
    clock.advance(60)

    # when its own principal makes a write that is refused
    response = call(client_as("owner_a"), tenants.agent_a)

    # then
    assert response.status_code == 400
    assert connection_state(tenants.agent_a).last_seen == seen


def test_a_refused_first_write_creates_no_last_seen(tenants, client_as, clock):
    # when an agent never seen makes a refused write
    response = _bad_statistics(client_as("owner_a"), tenants.agent_a)

    # then it is still never seen
    assert response.status_code == 400
    state = connection_state(tenants.agent_a)
    assert state is None or state.last_seen is None


def test_the_same_write_refreshes_last_seen_once_it_succeeds(tenants, client_as, clock):
    # given a refused write a minute after the agent was seen
    touch_agent_last_seen(tenants.agent_a, at=clock.now())
    clock.advance(60)
    service = AgentServiceFactory(identity=tenants.agent_a)
    url = f"{SERVICES}{service.uuid.hex}/set_statistics/"
    client = client_as("owner_a")
    assert post(client, url, {"statistics": "x"}).status_code == 400

    # when the agent sends it again, correctly
    clock.advance(5)
    response = post(client, url, {"statistics": {"orders": 3}})

    # then
    assert response.status_code == 200
    assert connection_state(tenants.agent_a).last_seen == clock.now()


def test_deleting_an_agent_is_answered_without_touching_it(tenants, client_as, broker):
    # when the owner deletes its agent
    response = client_as("owner_a").delete(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/")

    # then
    assert response.status_code == 204
    assert connection_state(tenants.agent_a) is None
