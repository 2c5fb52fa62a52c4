"""What an agent records (record_dispatch, record_heartbeat): who may, the counters, the
errors and their times, and how they change the envelope."""

from datetime import datetime

import pytest

from marketplace.models import AgentIdentity
from tests.kit.envelope import (
    NOT_AUTHENTICATED,
    NOT_FOUND,
    NOT_MANAGER,
    RECORD_DISPATCH,
    RECORD_HEARTBEAT,
    THRESHOLDS,
    connection_state,
    fetch_envelope,
    iso,
    post,
)


def recorded(agent: AgentIdentity) -> tuple[int, int, datetime | None]:
    state = connection_state(agent)
    if state is None:
        return (0, 0, None)
    return (state.dispatches_succeeded, state.dispatches_failed, state.last_heartbeat_at)


@pytest.mark.parametrize(
    ("url", "role", "code"),
    [
        (url, role, code)
        for url in (RECORD_DISPATCH, RECORD_HEARTBEAT)
        for role, code in [
            ("owner_a", 204),
            ("creator_a", 404),
            ("staff", 204),
            ("support", 403),
            ("outsider", 404),
            ("owner_b", 404),
            ("anonymous", 401),
        ]
    ],
)
def test_recording_an_agent_outcome_permission_matrix(tenants, client_as, clock, url, role, code):
    # given
    body = {"instance_id": str(tenants.agent_a.uuid), "succeeded": True}

    # when
    response = post(client_as(role), url, body)

    # then
    assert response.status_code == code
    expected_body = {403: NOT_MANAGER, 404: NOT_FOUND, 401: NOT_AUTHENTICATED}.get(code)
    assert (response.json() if response.content else None) == expected_body
    changed = {
        (RECORD_DISPATCH, 204): (1, 0, None),
        (RECORD_HEARTBEAT, 204): (0, 0, clock.now()),
    }
    assert recorded(tenants.agent_a) == changed.get((url, code), (0, 0, None))


def test_dispatches_accumulate_in_the_counters(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)

    # when
    for succeeded in (True, True, False, True):
        response = post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": succeeded})
        assert response.status_code == 204

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["dispatches_succeeded"], envelope["dispatches_failed"]) == (3, 1)
    assert envelope["last_dispatch_at"] == iso(clock.now())


def test_failed_dispatch_records_the_error_and_degrades_the_envelope(tenants, client_as, clock):
    # given
    client = client_as("owner_a")

    # when
    response = post(
        client,
        RECORD_DISPATCH,
        {"instance_id": str(tenants.agent_a.uuid), "succeeded": False, "error": "sbatch: timeout"},
    )

    # then
    assert response.status_code == 204
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "degraded",
        "unhealthy",
        "recent_dispatch_failure",
    )
    assert (envelope["dispatches_succeeded"], envelope["dispatches_failed"]) == (0, 1)
    assert envelope["last_dispatch_error"] == "sbatch: timeout"
    assert envelope["last_dispatch_at"] == iso(clock.now())
    assert envelope["last_seen"] == iso(clock.now())


def test_failed_dispatch_stops_degrading_one_second_after_the_window(tenants, client_as, clock):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": False, "error": "x"})
    clock.advance(THRESHOLDS["degraded_window_seconds"])
    post(client, RECORD_HEARTBEAT, {"instance_id": agent_id})
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # when
    clock.advance(1)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == (
        "degraded",
        "recent_dispatch_failure",
    )
    assert (past_limit["connection_status"], past_limit["status_reason"]) == ("healthy", "active")
    assert past_limit["last_dispatch_error"] == "x"


def test_hosted_agent_goes_offline_one_second_after_offline_after_seconds(
    tenants, client_as, clock
):
    # given
    post(client_as("owner_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)})
    clock.advance(THRESHOLDS["offline_after_seconds"])
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # when
    clock.advance(1)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == ("online", "seen")
    assert (past_limit["connection_status"], past_limit["status"], past_limit["status_reason"]) == (
        "offline",
        "offline",
        "not_seen_recently",
    )


def test_dispatch_time_given_by_the_agent_is_recorded_and_a_naive_time_is_utc(
    tenants, client_as, clock
):
    # given
    happened = clock.ago(120)
    naive = happened.replace(tzinfo=None).isoformat()

    # when
    response = post(
        client_as("owner_a"),
        RECORD_DISPATCH,
        {"instance_id": str(tenants.agent_a.uuid), "succeeded": True, "occurred_at": naive},
    )

    # then
    assert response.status_code == 204
    assert connection_state(tenants.agent_a).last_dispatch_at == happened


def test_an_earlier_dispatch_reported_late_does_not_move_last_dispatch_at_back(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": True})

    # when
    post(
        client,
        RECORD_DISPATCH,
        {"instance_id": agent_id, "succeeded": True, "occurred_at": iso(clock.ago(3600))},
    )

    # then
    assert connection_state(tenants.agent_a).last_dispatch_at == clock.now()


def test_reporting_an_old_dispatch_keeps_last_seen_at_the_time_of_the_call(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)

    # when
    post(
        client,
        RECORD_DISPATCH,
        {"instance_id": agent_id, "succeeded": True, "occurred_at": iso(clock.ago(7200))},
    )

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert envelope["last_seen"] == iso(clock.now())
    assert (envelope["connection_status"], envelope["status_reason"]) == ("healthy", "active")


def test_an_earlier_failure_reported_late_keeps_the_error_of_the_latest_failure(
    tenants, client_as, clock
):
    # given
    client = client_as("owner_a")
    agent_id = str(tenants.agent_a.uuid)
    post(client, RECORD_DISPATCH, {"instance_id": agent_id, "succeeded": False, "error": "new"})

    # when
    post(
        client,
        RECORD_DISPATCH,
        {
            "instance_id": agent_id,
            "succeeded": False,
            "error": "old",
            "occurred_at": iso(clock.ago(600)),
        },
    )

    # then
    state = connection_state(tenants.agent_a)
    assert (state.last_dispatch_failed_at, state.last_dispatch_error) == (clock.now(), "new")


@pytest.mark.parametrize(
    ("url", "body", "errors"),
    [
        (
            RECORD_DISPATCH,
            {},
            {"instance_id": ["This field is required."], "succeeded": ["This field is required."]},
        ),
        (
            RECORD_DISPATCH,
            {"instance_id": "agent-1", "succeeded": "maybe"},
            {"instance_id": ["Must be a valid UUID."], "succeeded": ["Must be a valid boolean."]},
        ),
        (
            RECORD_DISPATCH,
            {"instance_id": "AGENT", "succeeded": False, "error": "e" * 2001},
            {
                "instance_id": ["Must be a valid UUID."],
                "error": ["Ensure this field has no more than 2000 characters."],
            },
        ),
        (RECORD_HEARTBEAT, {}, {"instance_id": ["This field is required."]}),
        (RECORD_HEARTBEAT, {"instance_id": "7"}, {"instance_id": ["Must be a valid UUID."]}),
    ],
    ids=[
        "dispatch-empty",
        "dispatch-malformed",
        "dispatch-error-too-long",
        "beat-empty",
        "beat-int",
    ],
)
def test_recording_with_a_bad_body_is_400_with_field_errors_and_records_nothing(
    tenants, client_as, url, body, errors
):
    # when
    response = post(client_as("owner_a"), url, body)

    # then
    assert response.status_code == 400
    assert response.json() == errors
    assert connection_state(tenants.agent_a) is None
