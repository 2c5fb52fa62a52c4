"""Agents ship log lines in batches: all or nothing, one INSERT, only for their own agents."""

import json
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import AgentLog
from tests.factories import AgentIdentityFactory, UserFactory
from tests.marketplace.agent_logs.builders import LOGS, shipped_entry


def inserts_into_agent_log(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "marketplace_agentlog"')]


def test_a_batch_is_stored_and_answered_in_the_sdk_s_shape(client_for, identity, owner):
    # given two lines of the agent, the second with a dashed uuid
    entries = [
        shipped_entry(identity, level="WARNING", timestamp=1_780_000_000.25),
        shipped_entry(identity, agent_identity_uuid=str(identity.uuid), module=""),
    ]

    # when its owner's token ships them
    response = client_for(owner).post(LOGS, entries, format="json")

    # then both are stored and the answer lists them as SiteAgentLog items
    assert response.status_code == 201
    assert AgentLog.objects.filter(identity=identity).count() == 2
    first = response.json()[0]
    assert set(first) == {
        "uuid",
        "offering",
        "offering_uuid",
        "agent_identity_uuid",
        "timestamp",
        "level",
        "message",
        "module",
        "created",
    }
    assert first["timestamp"] == 1_780_000_000.25
    assert (first["level"], first["agent_identity_uuid"]) == ("WARNING", str(identity.uuid))
    assert first["offering_uuid"] == str(identity.offering.uuid)
    assert first["offering"].endswith(
        f"/api/marketplace-provider-offerings/{identity.offering.uuid.hex}/"
    )


@pytest.mark.parametrize(
    ("body", "error_key"),
    [
        ({"agent_identity_uuid": "x"}, "non_field_errors"),
        ([], "non_field_errors"),
        ("lines", "non_field_errors"),
    ],
)
def test_a_body_that_is_not_a_non_empty_list_is_refused(client_for, owner, body, error_key):
    # when the body is an object, an empty list or a string
    response = client_for(owner).post(LOGS, body, format="json")

    # then it is a 400 naming the problem, and nothing is stored
    assert response.status_code == 400
    assert error_key in response.json()
    assert not AgentLog.objects.exists()


def test_a_batch_over_the_maximum_is_refused_whole(client_for, identity, owner, settings):
    # given a maximum of 3 entries per batch
    settings.AGENT_LOG_BATCH_MAX = 3

    # when 4 entries are shipped
    response = client_for(owner).post(LOGS, [shipped_entry(identity)] * 4, format="json")

    # then the batch is refused and nothing is stored
    assert response.status_code == 400
    assert "no more than 3" in response.json()["non_field_errors"][0]
    assert not AgentLog.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "TRACE"),
        ("level", None),
        ("timestamp", "yesterday"),
        ("timestamp", "nan"),
        ("timestamp", 900_000_000.0),
        ("timestamp", "in the future"),
        ("agent_identity_uuid", "agent-1"),
        ("module", "m" * 256),
        ("message", None),
    ],
)
def test_one_malformed_entry_refuses_the_batch_with_errors_per_entry(
    client_for, identity, owner, field, value
):
    # given a good entry followed by a malformed one
    if value == "in the future":
        value = time.time() + 3600
    entries = [shipped_entry(identity), shipped_entry(identity, **{field: value})]

    # when they are shipped together
    response = client_for(owner).post(LOGS, entries, format="json")

    # then the answer has the errors keyed by the entry's index, and nothing is stored
    assert response.status_code == 400
    assert list(response.json()) == ["1"]
    assert field in response.json()["1"]
    assert not AgentLog.objects.exists()


def test_a_clock_slightly_ahead_is_accepted(client_for, identity, owner, settings):
    # given a tolerated skew of 300 s
    settings.AGENT_LOG_MAX_FUTURE_SECONDS = 300

    # when a line is stamped a minute ahead of this server's clock
    response = client_for(owner).post(
        LOGS, [shipped_entry(identity, timestamp=time.time() + 60)], format="json"
    )

    # then it is stored
    assert response.status_code == 201


def test_an_unknown_agent_refuses_the_batch(client_for, identity, owner):
    # given a batch naming the owner's agent and an agent that does not exist
    entries = [
        shipped_entry(identity),
        shipped_entry(identity, agent_identity_uuid="0" * 31 + "1"),
    ]

    # when it is shipped
    response = client_for(owner).post(LOGS, entries, format="json")

    # then the unknown agent is named and nothing is stored
    assert response.status_code == 400
    assert "0" * 31 + "1" in response.json()["agent_identity_uuid"][0]
    assert not AgentLog.objects.exists()


def test_another_customer_s_agent_is_unknown_to_the_caller(client_for, identity, owner):
    # given an agent of a customer the caller has nothing to do with
    stranger_agent = AgentIdentityFactory()

    # when the caller ships lines for it beside its own
    entries = [shipped_entry(identity), shipped_entry(stranger_agent)]
    response = client_for(owner).post(LOGS, entries, format="json")

    # then it is refused as unknown (its existence is not revealed) and nothing is stored
    assert response.status_code == 400
    assert "agent_identity_uuid" in response.json()
    assert not AgentLog.objects.exists()


def test_support_sees_every_agent_but_may_not_write_its_logs(client_for, identity):
    # when a support user ships a line for an agent it does not manage
    support = UserFactory(is_support=True)
    response = client_for(support).post(LOGS, [shipped_entry(identity)], format="json")

    # then it is refused as forbidden, and nothing is stored
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not AgentLog.objects.exists()


@pytest.mark.parametrize(("role", "expected"), [("staff", 201), ("creator", 400), ("owner", 201)])
def test_managers_of_the_agent_may_ship_its_logs(client_for, identity, owner, role, expected):
    # given staff, the agent's creator who is not an owner (it sees the agent no more), or
    # the customer's owner
    creator = UserFactory()
    identity.created_by = creator
    identity.save()
    user = {"staff": UserFactory(is_staff=True), "creator": creator, "owner": owner}[role]

    # when it ships a line
    response = client_for(user).post(LOGS, [shipped_entry(identity)], format="json")

    # then it is stored, except the creator's
    assert response.status_code == expected
    assert AgentLog.objects.filter(identity=identity).count() == (1 if expected == 201 else 0)


def test_anonymous_may_not_ship_logs(api_client, identity):
    response = api_client.post(LOGS, [shipped_entry(identity)], format="json")
    assert response.status_code == 401


def test_an_overlong_message_is_truncated_and_marked(client_for, identity, owner, settings):
    # given a maximum message length of 40 characters
    settings.AGENT_LOG_MESSAGE_MAX_LENGTH = 40

    # when a line of 100 characters is shipped
    response = client_for(owner).post(
        LOGS, [shipped_entry(identity, message="x" * 100)], format="json"
    )

    # then it is stored cut to 40 characters, ending with the mark
    assert response.status_code == 201
    stored = AgentLog.objects.get().message
    assert len(stored) == 40
    assert stored.endswith(" [truncated]")


def test_characters_postgresql_cannot_store_are_replaced_not_refused(client_for, identity, owner):
    # when a message carries a NUL character and an unpaired surrogate (JSON-escaped)
    body = json.dumps([shipped_entry(identity, message="a\x00b\ud800c")])
    response = client_for(owner).post(LOGS, body, content_type="application/json")

    # then the line is stored with both replaced
    assert response.status_code == 201
    assert AgentLog.objects.get().message == "a\ufffdb?c"


@pytest.mark.parametrize("size", [1, 100])
def test_a_batch_is_one_insert_in_a_fixed_number_of_queries(
    real_postgres, client_for, identity, owner, size
):
    # given a batch of 1 or of 100 lines
    client = client_for(owner)
    entries = [shipped_entry(identity, message=f"line {n}") for n in range(size)]

    # when it is shipped
    with CaptureQueriesContext(connection) as queries:
        response = client.post(LOGS, entries, format="json")

    # then one INSERT stores them all, in the same number of queries whatever the size
    assert response.status_code == 201
    assert len(inserts_into_agent_log(queries)) == 1
    # token, visible agents, managed agents, the insert; whether the caller owns the agent's
    # customer now (only a current owner is the agent); then the agent is noted as seen
    # (its connection state row, created once in a savepoint, and last_seen): 5 more
    assert len(queries) == 10
    assert AgentLog.objects.count() == size


def test_log_shipping_is_throttled_like_other_agent_writes(client_for, identity, owner, settings):
    # given a limit of 2 agent writes a minute
    settings.AGENT_WRITE_THROTTLE_RATE = "2/min"
    client = client_for(owner)

    # when the agent ships three batches
    codes = [
        client.post(LOGS, [shipped_entry(identity)], format="json").status_code for _ in range(3)
    ]

    # then the third is throttled
    assert codes == [201, 201, 429]
    assert AgentLog.objects.count() == 2


def test_a_timestamp_beyond_any_float_is_refused(client_for, identity, owner):
    # given a number JSON allows but a float cannot hold (Python parses it as infinity)
    entry = json.dumps([shipped_entry(identity, timestamp=0)]).replace(
        '"timestamp": 0', '"timestamp": 1e400'
    )

    # when it is shipped
    response = client_for(owner).post(LOGS, entry, content_type="application/json")

    # then it is refused, not stored as a date
    assert response.status_code == 400
    assert "timestamp" in response.json()["0"]
    assert not AgentLog.objects.exists()
