"""Bad input, broker outages and repeated registrations on the site-agent write path.

Bad input is a 400 with DRF field errors and writes nothing; a broker outage is a 503
with code `broker_unavailable` and writes nothing, so a retry converges; every
registration is idempotent, as the real agent repeats it on every start.
"""

from datetime import UTC, datetime

import pytest
import requests
import responses
from django.conf import settings
from rest_framework.authtoken.models import Token

from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    AgentServiceState,
    EventSubscription,
    EventSubscriptionQueue,
)
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    EventSubscriptionFactory,
    OfferingFactory,
)
from tests.kit.broker import accept_provisioning, management_url

IDENTITIES = "/api/marketplace-site-agent-identities/"
SERVICES = "/api/marketplace-site-agent-services/"
SUBSCRIPTIONS = "/api/event-subscriptions/"


def _identity_url(identity: AgentIdentity, action: str = "") -> str:
    return f"{IDENTITIES}{identity.uuid.hex}/{action}"


def _subscription_url(subscription: EventSubscription, action: str = "") -> str:
    return f"{SUBSCRIPTIONS}{subscription.uuid.hex}/{action}"


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)


# --- bad input: 400 with field errors, nothing written ----------------------------------


def test_register_event_subscription_with_unknown_object_type_is_rejected(
    identity, owner_client, broker
):
    # given
    body = {"observable_object_type": "invoice", "description": "x"}

    # when
    response = owner_client.post(
        _identity_url(identity, "register_event_subscription/"), body, format="json"
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


def test_deeply_nested_json_body_is_a_parse_error_not_a_server_error(identity, owner_client):
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
    assert response.json()["code"] == "parse_error"
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
        _subscription_url(subscription, "create_queue/"), body, format="json"
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
        _subscription_url(subscription, "create_queue/"), body, format="json"
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
    response = getattr(owner_client, method)(_identity_url(identity), body, format="json")

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
    response = owner_client.put(_identity_url(identity), body, format="json")

    # then
    assert response.status_code == 200
    assert response.json()["name"] == "shared-name"
    identity.refresh_from_db()
    assert identity.name == "shared-name"


# --- broker outage: 503, nothing written, a retry converges -----------------------------

BROKER_FAILURES = [
    pytest.param(lambda: {"body": requests.ConnectionError("refused")}, id="refused"),
    pytest.param(lambda: {"body": requests.ReadTimeout("read timed out")}, id="timeout"),
    pytest.param(lambda: {"status": 500}, id="http-500"),
    pytest.param(lambda: {"status": 401}, id="http-401"),
]


def _assert_broker_unavailable(response, *, token: str) -> None:
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "broker_unavailable"
    assert body["detail"].startswith("The message broker cannot be asked right now")
    assert token not in response.content.decode()


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_register_event_subscription_fails_with_503_and_writes_nothing_when_broker_fails(
    failure, identity, owner, owner_client, broker
):
    # given a broker that creates the vhost and permissions, then fails on the user
    broker.add(responses.PUT, management_url("vhosts"), status=201)
    broker.add(responses.PUT, management_url("permissions"), status=201)
    broker.add(responses.PUT, management_url("users"), **failure())
    url = _identity_url(identity, "register_event_subscription/")
    body = {"observable_object_type": "order", "description": "orders"}

    # when
    response = owner_client.post(url, body, format="json")

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscription.objects.count() == 0

    # and when the broker is back, a retry creates exactly one subscription
    broker.reset()
    accept_provisioning(broker)
    retry = owner_client.post(url, body, format="json")
    assert retry.status_code == 201
    subscription = EventSubscription.objects.get()
    assert retry.json()["uuid"] == str(subscription.uuid)
    assert subscription.agent_identity == identity
    assert subscription.object_types == ["order"]


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_create_queue_fails_with_503_and_writes_nothing_when_broker_fails(
    failure, identity, offering, owner, owner_client, broker
):
    # given
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.PUT, management_url("queues"), **failure())
    url = _subscription_url(subscription, "create_queue/")
    body = {"offering_uuid": offering.uuid.hex, "object_type": "order"}

    # when
    response = owner_client.post(url, body, format="json")

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscriptionQueue.objects.count() == 0

    # and when the broker is back, a retry creates exactly one queue
    broker.reset()
    accept_provisioning(broker)
    retry = owner_client.post(url, body, format="json")
    assert retry.status_code == 201
    queue = EventSubscriptionQueue.objects.get()
    expected_name = f"subscription_{subscription.uuid.hex}_offering_{offering.uuid.hex}_order"
    assert retry.json()["queue_name"] == expected_name
    assert retry.json()["vhost"] == owner.uuid.hex
    assert (queue.event_subscription, queue.offering, queue.object_type) == (
        subscription,
        offering,
        "order",
    )
    assert broker.calls[0].request.url.endswith(f"/api/queues/{owner.uuid.hex}/{expected_name}")


def test_delete_event_subscription_keeps_the_row_when_broker_fails(
    identity, owner, owner_client, broker
):
    # given
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), status=503)

    # when
    response = owner_client.delete(_subscription_url(subscription))

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert EventSubscription.objects.filter(pk=subscription.pk).exists()


def test_delete_identity_keeps_the_agent_when_broker_fails(identity, owner, owner_client, broker):
    # given an agent with a subscription whose broker user cannot be removed
    subscription = EventSubscriptionFactory(agent_identity=identity)
    broker.add(responses.DELETE, management_url("users"), body=requests.ConnectionError("x"))

    # when
    response = owner_client.delete(_identity_url(identity))

    # then
    _assert_broker_unavailable(response, token=Token.objects.get(user=owner).key)
    assert AgentIdentity.objects.filter(pk=identity.pk).exists()
    assert EventSubscription.objects.filter(pk=subscription.pk).exists()
    assert broker.calls[0].request.url.endswith(f"/api/users/{subscription.uuid.hex}")


# --- idempotent registrations -----------------------------------------------------------


def test_registering_the_same_identity_twice_keeps_one_row_and_updates_it(offering, owner_client):
    # given
    first = {"offering": offering.uuid.hex, "name": "agent-a", "version": "1.0.0"}
    second = {**first, "version": "1.1.0"}

    # when
    created = owner_client.post(IDENTITIES, first, format="json")
    repeated = owner_client.post(IDENTITIES, second, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 201)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert repeated.json()["version"] == "1.1.0"
    identity = AgentIdentity.objects.get()
    assert (identity.name, identity.version) == ("agent-a", "1.1.0")


def test_registering_a_service_twice_keeps_one_row_and_makes_it_active(identity, owner_client):
    # given
    url = _identity_url(identity, "register_service/")
    body = {"name": "order_processing", "mode": "order_process"}

    # when the service is registered, falls into Error, and is registered again
    created = owner_client.post(url, body, format="json")
    AgentService.objects.update(state=AgentServiceState.ERROR)
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert repeated.json()["state"] == "Active"
    service = AgentService.objects.get()
    assert (service.identity, service.name, service.state) == (
        identity,
        "order_processing",
        "Active",
    )


def test_registering_a_processor_twice_keeps_one_row_and_updates_it(identity, owner_client):
    # given
    service = AgentServiceFactory(identity=identity)
    url = f"{SERVICES}{service.uuid.hex}/register_processor/"
    body = {"name": "OfferingOrderProcessor", "backend_type": "slurm", "backend_version": "23"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, {**body, "backend_version": "24"}, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    processor = AgentProcessor.objects.get()
    assert (processor.service, processor.backend_version) == (service, "24")
    assert processor.last_run is not None


def test_registering_the_same_event_subscription_twice_keeps_one_subscription(
    identity, owner_client, broker
):
    # given
    accept_provisioning(broker)
    url = _identity_url(identity, "register_event_subscription/")
    body = {"observable_object_type": "order", "description": "orders"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert EventSubscription.objects.count() == 1
    # the broker side is provisioned again on every call, so a reset broker converges
    assert [call.request.method for call in broker.calls] == ["PUT"] * 8


def test_registering_event_subscriptions_for_two_object_types_makes_two(
    identity, owner_client, broker
):
    # given
    accept_provisioning(broker)
    url = _identity_url(identity, "register_event_subscription/")

    # when
    order = owner_client.post(url, {"observable_object_type": "order"}, format="json")
    resource = owner_client.post(url, {"observable_object_type": "resource"}, format="json")

    # then
    assert (order.status_code, resource.status_code) == (201, 201)
    assert order.json()["observable_objects"] == [{"object_type": "order"}]
    assert resource.json()["observable_objects"] == [{"object_type": "resource"}]
    assert sorted(sub.object_types[0] for sub in identity.event_subscriptions.all()) == [
        "order",
        "resource",
    ]


def test_two_agents_of_one_owner_and_offering_each_get_their_own_subscription(
    offering, owner, owner_client, broker
):
    # given two agents of the same owner on the same offering
    accept_provisioning(broker)
    first = AgentIdentityFactory(offering=offering, created_by=owner)
    second = AgentIdentityFactory(offering=offering, created_by=owner)
    body = {"observable_object_type": "order"}

    # when
    one = owner_client.post(
        _identity_url(first, "register_event_subscription/"), body, format="json"
    )
    two = owner_client.post(
        _identity_url(second, "register_event_subscription/"), body, format="json"
    )

    # then
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["uuid"] != two.json()["uuid"]
    assert one.json()["agent_identity"] == str(first.uuid)
    assert two.json()["agent_identity"] == str(second.uuid)
    assert first.event_subscriptions.count() == 1
    assert second.event_subscriptions.count() == 1


def test_creating_the_same_queue_twice_keeps_one_row(identity, offering, owner_client, broker):
    # given
    accept_provisioning(broker)
    subscription = EventSubscriptionFactory(agent_identity=identity)
    url = _subscription_url(subscription, "create_queue/")
    body = {"offering_uuid": offering.uuid.hex, "object_type": "order"}

    # when
    created = owner_client.post(url, body, format="json")
    repeated = owner_client.post(url, body, format="json")

    # then
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["uuid"] == created.json()["uuid"]
    assert EventSubscriptionQueue.objects.count() == 1


# --- what the real agent sends ----------------------------------------------------------


def test_the_real_agents_registration_body_is_accepted(offering, owner_client):
    # given the body waldur-site-agent 1.0.0 sends
    body = {
        "offering": offering.uuid.hex,
        "name": "hpc-site-agent",
        "version": "1.0.0",
        "dependencies": [
            {
                "package": "waldur-site-agent-slurm",
                "version": "1.0.0",
                "entry_point": "waldur_site_agent_slurm.backend:SlurmBackend",
            }
        ],
        "config_file_path": "",
        "config_file_content": "",
        "last_restarted": "2026-11-26T00:34:36.841690",
    }

    # when
    response = owner_client.post(IDENTITIES, body, format="json")

    # then the naive time is taken as UTC and the extra key is dropped
    assert response.status_code == 201
    data = response.json()
    assert data["last_restarted"] == "2026-11-26T00:34:36.841690Z"
    assert data["dependencies"] == [{"package": "waldur-site-agent-slurm", "version": "1.0.0"}]
    assert (data["config_file_path"], data["config_file_content"]) == ("", "")
    identity = AgentIdentity.objects.get()
    assert identity.last_restarted == datetime(2026, 11, 26, 0, 34, 36, 841690, tzinfo=UTC)
    assert identity.dependencies == [{"package": "waldur-site-agent-slurm", "version": "1.0.0"}]


@pytest.mark.parametrize("form", ["hex", "dashed"])
def test_identity_is_addressed_by_hex_or_dashed_uuid(form, identity, owner_client):
    # given
    key = identity.uuid.hex if form == "hex" else str(identity.uuid)

    # when
    response = owner_client.get(f"{IDENTITIES}{key}/")

    # then
    assert response.status_code == 200
    assert response.json()["uuid"] == str(identity.uuid)


def test_unknown_identity_uuid_is_not_found(identity, owner_client):
    # when
    response = owner_client.get(f"{IDENTITIES}{'f' * 32}/")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "detail": "No AgentIdentity matches the given query.",
        "code": "not_found",
    }


def test_responses_never_contain_the_users_api_token(offering, owner, owner_client, broker):
    # given
    accept_provisioning(broker)
    token = Token.objects.get(user=owner).key

    # when the agent runs its whole registration flow
    identity = owner_client.post(
        IDENTITIES, {"offering": offering.uuid.hex, "name": "agent-a"}, format="json"
    )
    identity_url = f"{IDENTITIES}{identity.json()['uuid']}/"
    subscription = owner_client.post(
        f"{identity_url}register_event_subscription/",
        {"observable_object_type": "order"},
        format="json",
    )
    subscription_url = f"{SUBSCRIPTIONS}{subscription.json()['uuid']}/"
    queue = owner_client.post(
        f"{subscription_url}create_queue/",
        {"offering_uuid": offering.uuid.hex, "object_type": "order"},
        format="json",
    )
    reads = [
        owner_client.get(identity_url),
        owner_client.get(subscription_url),
        owner_client.get(SUBSCRIPTIONS),
        owner_client.get(f"/api/users/{owner.uuid.hex}/"),
    ]

    # then the token went to the broker as the subscription user's password, never back
    responses_seen = [identity, subscription, queue, *reads]
    assert [r.status_code for r in responses_seen] == [201, 201, 201, 200, 200, 200, 200]
    assert all(token not in r.content.decode() for r in responses_seen)
    user_puts = [call for call in broker.calls if "/api/users/" in call.request.url]
    assert token.encode() in user_puts[0].request.body
