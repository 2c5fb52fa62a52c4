"""Database errors answer what they mean: an outage 503, a conflict 409, bad input 400.

On the real PostgreSQL, where a NUL character in a compared string and a lost race on a
unique constraint are database errors, never an outage.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from django.db import connection as db_connection
from rest_framework.authtoken.models import Token

from agentstats.api.errors import handle_api_exception
from marketplace.models import AgentIdentity
from marketplace.registration import services as registration_services
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory

IDENTITIES = "/api/marketplace-site-agent-identities/"
STATS = "/api/marketplace-site-agent-connection-stats/"
NUL_NOT_ALLOWED = ["Null characters are not allowed."]
RENAMERS = 10


@pytest.fixture
def owner_client(real_postgres, owner, client_for):
    return client_for(owner)


# --- the mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OperationalError("connection refused"), 503, "database_unavailable"),
        (InterfaceError("connection already closed"), 503, "database_unavailable"),
        (IntegrityError("duplicate key value"), 409, "conflict"),
        (DataError("invalid input"), 400, "invalid"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_database_errors_map_to_outage_conflict_or_bad_input(error, status, code):
    # when
    response = handle_api_exception(error, {})

    # then
    assert response is not None
    assert response.status_code == status
    assert set(response.data) == {"detail", "code"}
    assert response.data["code"] == code


def test_a_database_error_that_is_a_bug_is_not_called_an_outage():
    # when
    response = handle_api_exception(ProgrammingError("column does not exist"), {})

    # then it is left to Django, which answers 500
    assert response is None


# --- NUL characters in list filters ---------------------------------------------------------


def test_identity_list_refuses_a_nul_character_in_name_with_400(owner_client, identity):
    # when
    response = owner_client.get(IDENTITIES, {"name": "agent\x00"})

    # then
    assert response.status_code == 400
    assert response.json() == {"name": NUL_NOT_ALLOWED}


def test_identity_list_still_filters_by_exact_name(owner_client, identity, offering):
    # given another agent of the same offering
    AgentIdentityFactory(offering=offering, created_by=identity.created_by)

    # when
    response = owner_client.get(IDENTITIES, {"name": identity.name})

    # then
    assert response.status_code == 200
    assert [agent["name"] for agent in response.json()] == [identity.name]


def test_connection_stats_refuse_a_nul_character_in_name_with_400(real_postgres, client_for):
    # when
    response = client_for(UserFactory(is_support=True)).get(STATS, {"name": "\x00"})

    # then the broker is not asked (no mock) and the answer names the field
    assert response.status_code == 400
    assert response.json() == {"name": NUL_NOT_ALLOWED}


# --- renames that race ----------------------------------------------------------------------


@pytest.fixture
def race_world(transactional_db, real_postgres, settings):
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    return owner, offering


def test_rename_that_loses_the_race_for_a_name_answers_409_and_writes_nothing(
    race_world, client_for, monkeypatch
):
    # given two agents, and a writer that takes no lock (the admin) renaming the rival to
    # "taken" between the rename's uniqueness check and its save
    owner, offering = race_world
    renamed = AgentIdentityFactory(offering=offering, created_by=owner, name="renamed")
    rival = AgentIdentityFactory(offering=offering, created_by=owner, name="rival")
    apply_fields = registration_services._apply_identity_fields

    def rename_rival_in_another_connection() -> None:
        try:
            AgentIdentity.objects.filter(pk=rival.pk).update(name="taken")
        finally:
            db_connection.close()

    def apply_fields_after_the_rival_won(identity, fields):
        racer = threading.Thread(target=rename_rival_in_another_connection)
        racer.start()
        racer.join(timeout=60)
        assert not racer.is_alive()
        apply_fields(identity, fields)

    monkeypatch.setattr(
        registration_services, "_apply_identity_fields", apply_fields_after_the_rival_won
    )
    body = {"offering": offering.uuid.hex, "name": "taken", "version": "2.0.0"}

    # when
    response = client_for(owner).put(f"{IDENTITIES}{renamed.uuid.hex}/", body, format="json")

    # then a conflict in DRF's shape, and the agent is as it was
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert set(response.json()) == {"detail", "code"}
    renamed.refresh_from_db()
    assert (renamed.name, renamed.version) == ("renamed", "1.0.0")
    assert AgentIdentity.objects.filter(offering=offering, name="taken").count() == 1


def test_concurrent_renames_to_one_name_give_it_to_exactly_one_agent(live_server, race_world):
    # given many agents of one offering
    owner, offering = race_world
    agents = [AgentIdentityFactory(offering=offering, created_by=owner) for _ in range(RENAMERS)]
    token = Token.objects.get(user=owner).key
    barrier = threading.Barrier(RENAMERS)

    def rename(agent: AgentIdentity) -> int:
        barrier.wait(timeout=60)
        response = requests.put(
            f"{live_server.url}{IDENTITIES}{agent.uuid.hex}/",
            json={"offering": offering.uuid.hex, "name": "the-one"},
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        return response.status_code

    # when they are all renamed to one name at once
    with ThreadPoolExecutor(max_workers=RENAMERS) as pool:
        codes = list(pool.map(rename, agents))

    # then one rename wins and the others are told the name is taken: no outage answers
    assert sorted(codes) == [200] + [400] * (RENAMERS - 1)
    assert AgentIdentity.objects.filter(offering=offering, name="the-one").count() == 1
