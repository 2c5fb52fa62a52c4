"""The reads an agent makes before it works: version, users/me, its provider offering and
its service provider; who sees what, `?field=` narrowing, and the JSON 404 for the rest."""

from importlib import metadata

import pytest

from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory

VERSION = "/api/version/"
ME = "/api/users/me/"
OFFERINGS = "/api/marketplace-provider-offerings/"
PROVIDERS = "/api/marketplace-service-providers/"
ROLES = ("anonymous", "outsider", "support", "staff", "owner", "creator")


@pytest.fixture
def world(db, client_for, api_client):
    """An offering with an owner and an agent registered by a user who is not an owner (any
    more: having registered it grants nothing)."""
    owner, creator = UserFactory(), UserFactory()
    customer = CustomerFactory(owners=[owner], name="Provider Co")
    offering = OfferingFactory(
        customer=customer,
        components=[{"type": "cpu", "billing_type": "usage", "unit_factor": 60, "extra": 1}],
        partitions=[{"partition_name": "batch"}],
        plugin_options={"enforce_qos": True},
    )
    AgentIdentityFactory(offering=offering, created_by=creator)
    clients = {
        "anonymous": api_client,
        "outsider": client_for(UserFactory()),
        "support": client_for(UserFactory(is_support=True)),
        "staff": client_for(UserFactory(is_staff=True)),
        "owner": client_for(owner),
        "creator": client_for(creator),
    }
    return offering, clients


def test_version_answers_the_installed_package_version_without_credentials(api_client, db):
    # when anyone asks for the version
    response = api_client.get(VERSION)

    # then it is this package's version
    assert response.status_code == 200
    assert response.json() == {"version": metadata.version("agentstats")}


def test_version_refuses_an_invalid_token(api_client, db):
    # given a token that does not exist
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    # when it asks for the version
    response = api_client.get(VERSION)

    # then the token is refused, public endpoint or not
    assert response.status_code == 401


def test_users_me_describes_the_caller_and_the_customers_it_owns(client_for, db):
    # given a user owning two customers
    user = UserFactory(username="agent-bot", first_name="Ada", last_name="Bot", email="a@b.c")
    first, second = (
        CustomerFactory(owners=[user], name="A"),
        CustomerFactory(owners=[user], name="B"),
    )

    # when it asks who it is
    body = client_for(user).get(ME).json()

    # then it gets its own account and one owner role per customer
    assert body["uuid"] == str(user.uuid)
    assert body["url"].endswith(f"/api/users/{user.uuid.hex}/")
    assert (body["username"], body["full_name"], body["email"]) == ("agent-bot", "Ada Bot", "a@b.c")
    assert (body["is_staff"], body["is_support"], body["is_active"]) == (False, False, True)
    assert [(p["role_name"], p["scope_type"], p["scope_uuid"]) for p in body["permissions"]] == [
        ("CUSTOMER.OWNER", "customer", str(first.uuid)),
        ("CUSTOMER.OWNER", "customer", str(second.uuid)),
    ]
    assert "token" not in body


def test_users_me_answers_only_the_requested_fields_and_ignores_unknown_ones(client_for, user):
    # when the caller narrows the answer with repeated and comma-separated field names
    client = client_for(user)
    narrowed = client.get(f"{ME}?field=uuid&field=username,no_such_key").json()
    unknown_only = client.get(f"{ME}?field=no_such_key")

    # then only the known requested keys come back, and an unknown name is not an error
    assert narrowed == {"uuid": str(user.uuid), "username": user.username}
    assert (unknown_only.status_code, unknown_only.json()) == (200, {})


def test_users_me_is_401_for_anonymous(api_client, db):
    assert api_client.get(ME).status_code == 401


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("outsider", 404),
        ("support", 200),
        ("staff", 200),
        ("owner", 200),
        ("creator", 404),
    ],
)
def test_provider_offering_is_visible_to_readers_and_to_whoever_runs_its_agents(
    world, role, expected
):
    # given an offering and a caller in some role
    offering, clients = world

    # when the caller reads the offering
    response = clients[role].get(f"{OFFERINGS}{offering.uuid}/")

    # then only those who may see its agents get it; others get a 404, as if it did not exist
    assert response.status_code == expected
    if expected == 404:
        assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_provider_offering_has_the_keys_the_agent_needs(world):
    # given the offering's owner
    offering, clients = world

    # when it reads the offering by uuid hex
    body = clients["owner"].get(f"{OFFERINGS}{offering.uuid.hex}/").json()

    # then the customer uuid is set and the stored configuration comes back as stored
    assert body["uuid"] == str(offering.uuid)
    assert body["url"].endswith(f"{OFFERINGS}{offering.uuid.hex}/")
    assert (body["customer_uuid"], body["customer_name"]) == (
        str(offering.customer.uuid),
        "Provider Co",
    )
    assert (body["name"], body["type"], body["state"]) == (offering.name, offering.type, "Active")
    assert body["components"] == offering.components
    assert body["partitions"] == [{"partition_name": "batch"}]
    assert body["plugin_options"] == {"enforce_qos": True}


def test_provider_offering_narrows_to_the_fields_the_agent_asks_for(world):
    # given the offering's agent
    offering, clients = world

    # when it asks as waldur-site-agent does
    response = clients["owner"].get(
        f"{OFFERINGS}{offering.uuid}/?field=components&field=customer_uuid"
        "&field=partitions&field=plugin_options"
    )

    # then exactly those keys come back
    assert set(response.json()) == {"components", "customer_uuid", "partitions", "plugin_options"}


def test_provider_offering_answers_objects_even_when_stored_configuration_is_malformed(world):
    # given an offering whose stored configuration has the wrong container types
    offering, clients = world
    offering.components = [{"type": "cpu"}, "not an object"]
    offering.partitions = {"partition_name": "batch"}
    offering.plugin_options = ["enforce_qos"]
    offering.save()

    # when its owner reads it
    body = clients["owner"].get(f"{OFFERINGS}{offering.uuid}/").json()

    # then components and partitions are lists of objects and plugin_options an object
    assert body["components"] == [{"type": "cpu"}]
    assert body["partitions"] == []
    assert body["plugin_options"] == {}


@pytest.mark.parametrize("segment", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
def test_provider_offering_is_a_json_404_for_a_malformed_or_unknown_uuid(world, segment):
    # given a staff user, who sees every offering
    _, clients = world

    # when it asks for something that is not an offering
    response = clients["staff"].get(f"{OFFERINGS}{segment}/")

    # then the answer is the API's JSON 404
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("role", "count"),
    [("outsider", 0), ("support", 1), ("staff", 1), ("owner", 1), ("creator", 0)],
)
def test_service_providers_are_the_customers_of_the_offerings_the_caller_sees(world, role, count):
    # given another customer with an offering and one without any
    offering, clients = world
    OfferingFactory()
    CustomerFactory()
    customer_hex = offering.customer.uuid.hex

    # when the caller lists the providers of the offering's customer, as the agent does
    response = clients[role].get(f"{PROVIDERS}?customer_uuid={customer_hex}&field=uuid")

    # then it is a plain list of the visible provider, identified by the customer's uuid
    assert response.status_code == 200
    assert response.json() == [{"uuid": str(offering.customer.uuid)}] * count
    assert response["X-Result-Count"] == str(count)


def test_service_providers_list_only_customers_with_offerings(world):
    # given a second offering of another customer and a customer without offerings
    offering, clients = world
    other = OfferingFactory()
    CustomerFactory()

    # when staff list every provider, with repeated field names
    response = clients["staff"].get(f"{PROVIDERS}?field=uuid&field=customer_name&page_size=100")

    # then both offering customers are listed, and nothing else
    assert response.status_code == 200
    assert sorted(item["uuid"] for item in response.json()) == sorted(
        [str(offering.customer.uuid), str(other.customer.uuid)]
    )


def test_service_providers_filter_accepts_a_dashed_customer_uuid_and_refuses_garbage(world):
    # given the offering's owner
    offering, clients = world

    # when it filters with a dashed uuid, and with something that is not a uuid
    dashed = clients["owner"].get(f"{PROVIDERS}?customer_uuid={offering.customer.uuid}")
    garbage = clients["owner"].get(f"{PROVIDERS}?customer_uuid=nope")

    # then the dashed one finds the provider and the garbage is a field error
    assert [item["customer_uuid"] for item in dashed.json()] == [str(offering.customer.uuid)]
    assert garbage.status_code == 400
    assert "customer_uuid" in garbage.json()


def test_service_providers_is_401_for_anonymous(world):
    _, clients = world
    assert clients["anonymous"].get(PROVIDERS).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/marketplace-orders/",
        "/api/marketplace-orders/00000000000040008000000000000000/",
        "/api/marketplace-provider-resources/",
        "/api/marketplace-offering-users/",
        "/api/marketplace-provider-offerings/00000000000040008000000000000000/user-attribute-config/",
    ],
)
def test_calls_of_the_agent_this_service_does_not_answer_are_json_404s(world, path):
    # given the agent's user
    _, clients = world

    # when it calls an upstream endpoint this service does not have
    response = clients["creator"].get(path)

    # then it gets the API's JSON 404 (the agent logs it and carries on), not an HTML page
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_paths_outside_the_api_keep_django_s_404_page(client, db):
    # when a browser asks for a page that does not exist
    response = client.get("/no-such-page/")

    # then it is Django's page, not the API's JSON
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
