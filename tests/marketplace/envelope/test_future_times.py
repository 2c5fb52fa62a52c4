"""Times agents report may run at most AGENT_CLOCK_SKEW_SECONDS ahead of the server: a
dispatch failure "in the year 9999" must not pin an agent degraded for good."""

from datetime import timedelta

import pytest

from marketplace.models import AgentIdentity
from tests.kit.api import IDENTITIES
from tests.kit.envelope import RECORD_DISPATCH, connection_state, fetch_envelope, iso, post


def failed_dispatch(agent: AgentIdentity, occurred_at: str) -> dict:
    return {
        "instance_id": str(agent.uuid),
        "succeeded": False,
        "error": "boom",
        "occurred_at": occurred_at,
    }


def test_a_dispatch_in_the_year_9999_is_a_400_and_counts_nothing(tenants, client_as):
    # when
    response = post(
        client_as("owner_a"),
        RECORD_DISPATCH,
        failed_dispatch(tenants.agent_a, "9999-12-31T23:59:59Z"),
    )

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["occurred_at"]
    state = connection_state(tenants.agent_a)
    assert state is None or state.dispatches_failed == 0


@pytest.mark.parametrize(("ahead", "code"), [(300, 204), (301, 400)])
def test_a_dispatch_may_be_ahead_by_the_clock_skew_and_no_more(
    tenants, client_as, clock, ahead, code
):
    # when an agent whose clock runs `ahead` seconds fast reports a dispatch
    at = clock.now() + timedelta(seconds=ahead)
    response = post(
        client_as("owner_a"), RECORD_DISPATCH, failed_dispatch(tenants.agent_a, iso(at))
    )

    # then
    assert response.status_code == code


def test_the_skew_is_a_setting(tenants, client_as, clock, settings):
    # given
    settings.AGENT_CLOCK_SKEW_SECONDS = 5
    at = clock.now() + timedelta(seconds=10)

    # when
    response = post(
        client_as("owner_a"), RECORD_DISPATCH, failed_dispatch(tenants.agent_a, iso(at))
    )

    # then
    assert response.status_code == 400
    assert "5 s ahead" in response.json()["occurred_at"][0]


def test_a_refused_future_failure_leaves_the_agent_recoverable(tenants, client_as, clock, settings):
    # given a refused far-future failure and a real one now
    client = client_as("owner_a")
    post(client, RECORD_DISPATCH, failed_dispatch(tenants.agent_a, "9999-12-31T23:59:59Z"))
    post(client, RECORD_DISPATCH, failed_dispatch(tenants.agent_a, iso(clock.now())))

    # when the degraded window has passed
    clock.advance(settings.AGENT_DEGRADED_WINDOW_SECONDS + 1)
    post(client, "/api/agents/record_heartbeat/", {"instance_id": str(tenants.agent_a.uuid)})

    # then the agent is no longer degraded by that failure
    envelope = fetch_envelope(client, tenants.agent_a)
    assert envelope["status_reason"] != "recent_dispatch_failure"
    assert connection_state(tenants.agent_a).last_dispatch_failed_at == clock.now() - timedelta(
        seconds=settings.AGENT_DEGRADED_WINDOW_SECONDS + 1
    )


def test_an_identity_restarted_in_the_future_is_a_400(tenants, client_as, clock):
    # when an agent registers saying it restarted an hour from now
    body = {
        "offering": str(tenants.agent_a.offering.uuid),
        "name": tenants.agent_a.name,
        "last_restarted": iso(clock.now() + timedelta(hours=1)),
    }
    response = post(client_as("owner_a"), IDENTITIES, body)

    # then
    assert response.status_code == 400
    assert list(response.json()) == ["last_restarted"]
    tenants.agent_a.refresh_from_db()
    assert tenants.agent_a.last_restarted is None


def test_an_identity_restarted_just_now_is_stored(tenants, client_as, clock):
    # when
    body = {
        "offering": str(tenants.agent_a.offering.uuid),
        "name": tenants.agent_a.name,
        "last_restarted": iso(clock.now()),
    }
    response = post(client_as("owner_a"), IDENTITIES, body)

    # then
    assert response.status_code == 201
    tenants.agent_a.refresh_from_db()
    assert tenants.agent_a.last_restarted == clock.now()
