"""Who gets which agent's envelope: staff and support every agent (`tenant_id` narrows),
an owner its customers' agents (having created one grants nothing); any other agent is a
404 exactly like one that does not exist."""

import uuid

import pytest

from tests.kit.envelope import GET_CONNECTION, NOT_AUTHENTICATED, NOT_FOUND, post


@pytest.mark.parametrize(
    ("role", "agent_tenant", "tenant_id", "code"),
    [
        ("anonymous", "a", None, 401),
        ("outsider", "a", None, 404),
        ("owner_a", "a", None, 200),
        ("owner_a", "b", None, 404),
        ("owner_a", "a", "b", 404),
        ("owner_a", "b", "b", 404),
        ("creator_a", "a", None, 404),
        ("creator_a", "b", None, 404),
        ("support", "a", None, 200),
        ("support", "b", None, 200),
        ("support", "a", "a", 200),
        ("support", "a", "b", 404),
        ("staff", "a", None, 200),
        ("staff", "b", None, 200),
        ("staff", "a", "b", 404),
    ],
)
def test_get_connection_tenant_matrix(tenants, client_as, role, agent_tenant, tenant_id, code):
    # given
    client = client_as(role)
    agent = tenants.agent(agent_tenant)
    body = {"instance_id": str(agent.uuid)}
    if tenant_id is not None:
        body["tenant_id"] = str(tenants.customer(tenant_id).uuid)

    # when
    response = post(client, GET_CONNECTION, body)

    # then
    assert response.status_code == code
    if code == 200:
        assert response.json()["connection"]["instance_id"] == str(agent.uuid)
        assert response.json()["connection"]["tenant_id"] == str(
            tenants.customer(agent_tenant).uuid
        )
    if code == 404:
        random_agent = post(client, GET_CONNECTION, {**body, "instance_id": str(uuid.uuid4())})
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
        assert (random_agent.status_code, random_agent.json()) == (404, response.json())
    if code == 401:
        assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"instance_id": "not-a-uuid"}, {"instance_id": ["Must be a valid UUID."]}),
        ({}, {"instance_id": ["This field is required."]}),
        (
            {"instance_id": "00000000-0000-0000-0000-00000000000g", "tenant_id": "x"},
            {"instance_id": ["Must be a valid UUID."], "tenant_id": ["Must be a valid UUID."]},
        ),
    ],
    ids=["malformed-instance", "missing-instance", "malformed-both"],
)
def test_get_connection_rejects_malformed_ids_with_field_errors(tenants, client_as, body, errors):
    # when
    response = post(client_as("owner_a"), GET_CONNECTION, body)

    # then
    assert response.status_code == 400
    assert response.json() == errors


def test_get_connection_for_an_unknown_uuid_is_404_in_drf_shape(tenants, client_as):
    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(uuid.uuid4())})

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
