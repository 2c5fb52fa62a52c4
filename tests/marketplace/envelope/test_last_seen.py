"""last_seen: every authenticated write an agent makes refreshes it; reads and refused
writes do not."""

import pytest

from tests.factories import AgentServiceFactory
from tests.kit.api import IDENTITIES, SERVICES
from tests.kit.envelope import (
    GET_CONNECTION,
    RECORD_DISPATCH,
    RECORD_HEARTBEAT,
    connection_state,
    post,
)


def _register_service(client, agent):
    return post(client, f"{IDENTITIES}{agent.uuid.hex}/register_service/", {"name": "orders"})


def _patch_identity(client, agent):
    return client.patch(f"{IDENTITIES}{agent.uuid.hex}/", {"version": "1.2.0"}, format="json")


def _reregister_identity(client, agent):
    return post(client, IDENTITIES, {"offering": str(agent.offering.uuid), "name": agent.name})


def _register_processor(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(
        client,
        f"{SERVICES}{service.uuid.hex}/register_processor/",
        {"name": "slurm", "backend_type": "slurm"},
    )


def _set_statistics(client, agent):
    service = AgentServiceFactory(identity=agent)
    return post(client, f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": {"a": 1}})


def _record_heartbeat(client, agent):
    return post(client, RECORD_HEARTBEAT, {"instance_id": str(agent.uuid)})


def _record_dispatch(client, agent):
    return post(client, RECORD_DISPATCH, {"instance_id": str(agent.uuid), "succeeded": True})


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (_register_service, 201),
        (_patch_identity, 200),
        (_reregister_identity, 201),
        (_register_processor, 201),
        (_set_statistics, 200),
        (_record_heartbeat, 204),
        (_record_dispatch, 204),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).lstrip("_"),
)
def test_every_authenticated_agent_write_call_refreshes_last_seen(
    tenants, client_as, clock, call, code
):
    # given
    client = client_as("owner_a")
    clock.advance(30)

    # when
    response = call(client, tenants.agent_a)

    # then
    assert response.status_code == code
    assert connection_state(tenants.agent_a).last_seen == clock.now()


def test_a_later_call_moves_last_seen_forward(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    _register_service(client, tenants.agent_a)

    # when
    clock.advance(45)
    _register_service(client, tenants.agent_a)

    # then
    assert connection_state(tenants.agent_a).last_seen == clock.now()


def test_support_reads_do_not_touch_last_seen(tenants, client_as):
    # given
    support = client_as("support")

    # when
    detail = support.get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/")
    timeline = support.get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/connection_events/")
    envelope = post(support, GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert (detail.status_code, timeline.status_code, envelope.status_code) == (200, 200, 200)
    assert connection_state(tenants.agent_a) is None


def test_support_write_that_is_refused_does_not_touch_last_seen(tenants, client_as):
    # when
    response = _register_service(client_as("support"), tenants.agent_a)

    # then
    assert response.status_code == 403
    assert connection_state(tenants.agent_a) is None
