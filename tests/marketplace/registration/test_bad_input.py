"""Bad input on the site-agent write path is a 400 with DRF field errors and writes nothing."""

import pytest
from django.conf import settings

from marketplace.models import AgentIdentity, EventSubscription, EventSubscriptionQueue
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
    OfferingFactory,
)
from tests.kit.api import IDENTITIES, SERVICES, identity_url, subscription_url


def test_register_event_subscription_with_unknown_object_type_is_rejected(
    identity, owner_client, broker
):
    # given
    body = {"observable_object_type": "invoice", "description": "x"}

    # when
    response = owner_client.post(
        identity_url(identity, "register_event_subscription/"), body, format="json"
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["observable_object_type"]
    assert EventSubscription.objects.count() == 0
    assert len(broker.calls) == 0


def test_create_identity_with_malformed_offering_uuid_is_rejected(offering, owner_client):
    # when
    response = owner_client.post(
        IDENTITIES, {"offering": "not-a-uuid", "name": "agent-a"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == {"offering": ["Must be a valid UUID."]}
    assert AgentIdentity.objects.count() == 0


def test_create_identity_for_unknown_offering_is_rejected(offering, owner_client):
    # given an offering uuid nobody has
    unknown = "0" * 32

    # when
    response = owner_client.post(IDENTITIES, {"offering": unknown, "name": "a"}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {"offering": ["Offering not found."]}
    assert AgentIdentity.objects.count() == 0


def test_create_identity_with_oversize_config_file_content_is_rejected(offering, owner_client):
    # given
    body = {
        "offering": offering.uuid.hex,
        "name": "agent-a",
        "config_file_content": "x" * (settings.AGENT_CONFIG_MAX_LENGTH + 1),
    }

    # when
    response = owner_client.post(IDENTITIES, body, format="json")

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["config_file_content"]
    assert AgentIdentity.objects.count() == 0


def test_create_identity_with_config_file_content_at_the_limit_is_accepted(offering, owner_client):
    # given
    content = "x" * settings.AGENT_CONFIG_MAX_LENGTH
    body = {"offering": offering.uuid.hex, "name": "agent-a", "config_file_content": content}

    # when
    response = owner_client.post(IDENTITIES, body, format="json")

    # then
    assert response.status_code == 201
    assert AgentIdentity.objects.get().config_file_content == content


def _statistics_of_size(size: int) -> dict[str, str]:
    envelope = len('{"blob":""}')
    return {"blob": "x" * (size - envelope)}


def test_set_statistics_over_the_byte_limit_is_rejected(identity, owner_client):
    # given a service with statistics already reported
    service = AgentServiceFactory(identity=identity, statistics={"orders": 1})
    oversize = _statistics_of_size(settings.AGENT_STATISTICS_MAX_BYTES + 1)

    # when
    response = owner_client.post(
        f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": oversize}, format="json"
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["statistics"]
    service.refresh_from_db()
    assert service.statistics == {"orders": 1}


def test_set_statistics_at_the_byte_limit_is_stored(identity, owner_client):
    # given
    service = AgentServiceFactory(identity=identity)
    statistics = _statistics_of_size(settings.AGENT_STATISTICS_MAX_BYTES)

    # when
    response = owner_client.post(
        f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": statistics}, format="json"
    )

    # then
    assert response.status_code == 200
    assert response.json()["statistics"] == statistics
    service.refresh_from_db()
    assert service.statistics == statistics


@pytest.mark.parametrize(
    "statistics",
    [
        pytest.param({"note": "a\u0000b"}, id="nul-in-value"),
        pytest.param({"n\u0000": 1}, id="nul-in-key"),
    ],
)
def test_set_statistics_with_nul_characters_is_rejected(statistics, identity, owner_client):
    # given
    service = AgentServiceFactory(identity=identity, statistics={"orders": 1})

    # when
    response = owner_client.post(
        f"{SERVICES}{service.uuid.hex}/set_statistics/", {"statistics": statistics}, format="json"
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["statistics"]
    service.refresh_from_db()
    assert service.statistics == {"orders": 1}


def test_deeply_nested_json_body_is_a_400_on_its_field_not_a_server_error(identity, owner_client):
    # given a small body nested deeper than Python's recursion limit
    service = AgentServiceFactory(identity=identity, statistics={"orders": 1})
    depth = 5000
    body = '{"statistics": {"a": ' + "[" * depth + "]" * depth + "}}"
    owner_client.raise_request_exception = False

    # when
    response = owner_client.post(
        f"{SERVICES}{service.uuid.hex}/set_statistics/", body, content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["statistics"]
    service.refresh_from_db()
    assert service.statistics == {"orders": 1}


@pytest.mark.parametrize(
    ("body", "expected_errors"),
    [
        pytest.param(
            {"offering_uuid": "0" * 32, "object_type": "order"},
            {"offering_uuid": ["Offering not found."]},
            id="unknown-offering",
        ),
        pytest.param(
            {"offering_uuid": "not-a-uuid", "object_type": "order"},
            {"offering_uuid": ["Must be a valid UUID."]},
            id="malformed-offering",
        ),
        pytest.param(
            {"object_type": "invoice"},
            {
                "offering_uuid": ["This field is required."],
                "object_type": ['"invoice" is not a valid choice.'],
            },
            id="unknown-object-type",
        ),
    ],
)
def test_create_queue_with_bad_input_is_rejected(
    body, expected_errors, identity, owner_client, broker
):
    # given
    subscription = EventSubscriptionFactory(agent_identity=identity)

    # when
    response = owner_client.post(
        subscription_url(subscription, "create_queue/"), body, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == expected_errors
    assert EventSubscriptionQueue.objects.count() == 0
    assert len(broker.calls) == 0


def test_create_queue_for_another_customers_offering_is_rejected(identity, owner_client, broker):
    # given an offering the owner has nothing to do with
    subscription = EventSubscriptionFactory(agent_identity=identity)
    body = {"offering_uuid": OfferingFactory().uuid.hex, "object_type": "order"}

    # when
    response = owner_client.post(
        subscription_url(subscription, "create_queue/"), body, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == {"offering_uuid": ["Offering not found."]}
    assert EventSubscriptionQueue.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "patch"])
def test_renaming_identity_to_a_name_taken_on_the_same_offering_is_rejected(
    method, identity, offering, owner_client
):
    # given another agent of the same offering
    AgentIdentityFactory(offering=offering, name="taken")
    original_name = identity.name
    body = {"offering": offering.uuid.hex, "name": "taken", "version": "2.0.0"}

    # when
    response = getattr(owner_client, method)(identity_url(identity), body, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {"name": ["This offering already has an agent with this name."]}
    identity.refresh_from_db()
    assert (identity.name, identity.version) == (original_name, "1.0.0")
    assert AgentIdentity.objects.filter(name="taken").count() == 1


def test_renaming_identity_to_a_name_taken_on_another_offering_is_accepted(
    identity, offering, owner_client
):
    # given an agent with the same name elsewhere
    AgentIdentityFactory(name="shared-name")
    body = {"offering": offering.uuid.hex, "name": "shared-name"}

    # when
    response = owner_client.put(identity_url(identity), body, format="json")

    # then
    assert response.status_code == 200
    assert response.json()["name"] == "shared-name"
    identity.refresh_from_db()
    assert identity.name == "shared-name"
