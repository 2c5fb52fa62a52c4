"""Hostile JSON: over-deep nesting and text the database cannot store are 400s on the
field that holds them, never a 500 or a 503, and write nothing."""

import json

import pytest

from marketplace.models import AgentIdentity
from tests.factories import AgentServiceFactory
from tests.kit.api import IDENTITIES, SERVICES, identity_url


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_statistics(client, service, body: str):
    url = f"{SERVICES}{service.uuid.hex}/set_statistics/"
    return client.post(url, body, content_type="application/json")


def assert_refused_on_statistics(response, service) -> None:
    assert response.status_code == 400
    assert list(response.json()) == ["statistics"]
    service.refresh_from_db()
    assert service.statistics == {"orders": 1}


@pytest.fixture
def service(identity):
    return AgentServiceFactory(identity=identity, statistics={"orders": 1})


@pytest.fixture
def agent_client(client_for, owner):
    agent_client = client_for(owner)
    agent_client.raise_request_exception = False
    return agent_client


@pytest.mark.parametrize("depth", [63, 350, 979])
def test_statistics_nested_past_the_limit_is_a_400_on_statistics(agent_client, service, depth):
    # given statistics nested `depth` levels below the body (the body itself is one more)
    body = '{"statistics": {"a": ' + nested(depth) + "}}"

    # when
    response = post_statistics(agent_client, service, body)

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["statistics"]
    assert "64 levels" in response.json()["statistics"][0]
    service.refresh_from_db()
    assert service.statistics == {"orders": 1}


def test_statistics_at_the_limit_are_stored(agent_client, service):
    # given a body exactly API_JSON_MAX_DEPTH (64) levels deep: body, statistics, 62 arrays
    body = '{"statistics": {"a": ' + nested(62) + "}}"

    # when
    response = post_statistics(agent_client, service, body)

    # then
    assert response.status_code == 200
    service.refresh_from_db()
    assert json.dumps(service.statistics["a"]) == json.dumps(json.loads(nested(62)))


def test_the_depth_limit_is_a_setting(agent_client, service, settings):
    # given a limit of 4 levels
    settings.API_JSON_MAX_DEPTH = 4
    body = '{"statistics": {"a": [[[]]]}}'

    # when
    response = post_statistics(agent_client, service, body)

    # then
    assert response.status_code == 400
    assert "4 levels" in response.json()["statistics"][0]


def test_an_over_deep_field_of_any_body_is_named(agent_client, identity):
    # given an identity registration whose dependencies nest too deep
    body = json.dumps({"offering": str(identity.offering.uuid), "name": "x"})[:-1]
    body += ', "dependencies": ' + nested(100) + "}"

    # when
    response = agent_client.post(IDENTITIES, body, content_type="application/json")

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["dependencies"]
    assert AgentIdentity.objects.filter(name="x").count() == 0


def test_an_over_deep_entry_of_a_log_batch_is_named_by_its_index(agent_client, identity):
    # given a log batch whose second entry nests too deep
    entry = {"agent_identity_uuid": identity.uuid.hex, "timestamp": 1.8e9, "level": "INFO"}
    body = "[" + json.dumps(entry) + ", " + nested(100) + "]"

    # when
    response = agent_client.post(
        "/api/marketplace-site-agent-logs/", body, content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["1"]


@pytest.mark.parametrize(
    "statistics",
    [
        pytest.param('{"a": "x\\ud800y"}', id="value"),
        pytest.param('{"\\udfff": 1}', id="key"),
        pytest.param('{"a": [{"b": ["\\ud800"]}]}', id="nested"),
        pytest.param('{"a": "x\\u0000y"}', id="nul"),
    ],
)
def test_lone_surrogates_and_nul_in_statistics_are_a_400_on_statistics(
    agent_client, service, statistics, real_postgres
):
    # given a JSON-escaped lone surrogate (or NUL) that PostgreSQL cannot store
    body = '{"statistics": ' + statistics + "}"

    # when
    response = post_statistics(agent_client, service, body)

    # then
    assert_refused_on_statistics(response, service)


@pytest.mark.parametrize("field", ["name", "version", "config_file_content"])
def test_a_lone_surrogate_in_any_text_field_is_a_400_on_that_field(
    agent_client, identity, field, real_postgres
):
    # given a registration with a lone surrogate in one text field
    body = {"offering": str(identity.offering.uuid), "name": "agent-x", field: "a\ud800b"}

    # when
    response = agent_client.post(
        identity_url(identity, "").replace(f"{identity.uuid.hex}/", ""),
        json.dumps(body),
        content_type="application/json",
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not AgentIdentity.objects.filter(name__startswith="a").exclude(pk=identity.pk).exists()


def test_a_lone_surrogate_in_a_registered_service_name_is_a_400(
    agent_client, identity, real_postgres
):
    # when
    response = agent_client.post(
        identity_url(identity, "register_service/"),
        '{"name": "svc\\ud83d"}',
        content_type="application/json",
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert identity.services.count() == 0
