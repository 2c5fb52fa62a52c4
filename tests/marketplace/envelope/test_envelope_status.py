"""How broker connections, heartbeats and the observer's beat set an envelope's status,
to the second of each threshold."""

from tests.kit.api import IDENTITIES
from tests.kit.envelope import (
    GET_CONNECTION,
    NODE,
    RECORD_HEARTBEAT,
    THRESHOLDS,
    close_connection,
    fetch_envelope,
    iso,
    observer_beat,
    open_connection,
    post,
    subscribe,
)


def test_heartbeat_makes_a_connected_agent_healthy(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(600))

    # when
    response = post(
        client_as("owner_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)}
    )

    # then
    assert response.status_code == 204
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "healthy",
        "available",
        "active",
    )
    assert envelope["last_seen"] == iso(clock.now())
    assert envelope["last_heartbeat_at"] == iso(clock.now())
    assert (envelope["transport"], envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (
        "ws",
        NODE,
        NODE,
    )


def test_connected_agent_turns_from_healthy_to_online_one_second_after_healthy_seen_seconds(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(60))
    post(client_as("owner_a"), RECORD_HEARTBEAT, {"instance_id": str(tenants.agent_a.uuid)})

    # when
    clock.advance(600)
    observer_beat(clock)
    at_limit = fetch_envelope(client_as("staff"), tenants.agent_a)
    clock.advance(1)
    observer_beat(clock)
    past_limit = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (at_limit["connection_status"], at_limit["status_reason"]) == ("healthy", "active")
    assert (past_limit["connection_status"], past_limit["status_reason"]) == (
        "online",
        "connected",
    )


def test_closed_connection_makes_the_agent_offline_with_one_flap_and_two_timeline_events(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(900))

    # when
    close_connection("conn-1", at=clock.ago(300))

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "offline",
        "offline",
        "no_broker_connection",
    )
    assert envelope["deployment_mode"] == "connected"
    assert envelope["transport"] == "ws"
    assert envelope["flaps_24h"] == 1
    assert envelope["open_connections"] == 0
    assert envelope["connected_since"] is None
    assert envelope["uptime_24h_seconds"] == 600.0
    timeline = client_as("staff").get(f"{IDENTITIES}{tenants.agent_a.uuid.hex}/connection_events/")
    assert [(event["kind"], event["reason"]) for event in timeline.json()] == [
        ("disconnected", "closed"),
        ("connected", "opened"),
    ]


def test_closed_connection_leaves_no_owner_pod_and_no_ws_mesh_pod(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(900))

    # when
    close_connection("conn-1", at=clock.ago(300))

    # then
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)
    assert (envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (None, None)


def test_agent_that_disconnects_flap_threshold_times_in_24h_is_degraded_flapping(
    tenants, client_as, clock, settings
):
    # given
    settings.AGENT_FLAP_THRESHOLD = 2
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    for number in (1, 2):
        open_connection(subscription, name=f"conn-{number}", at=clock.ago(4000 - 1000 * number))
        close_connection(f"conn-{number}", at=clock.ago(3500 - 1000 * number))
    open_connection(subscription, name="conn-3", at=clock.ago(100))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "degraded",
        "unhealthy",
        "flapping",
    )
    assert envelope["flaps_24h"] == 2
    assert envelope["uptime_24h_seconds"] == 500.0 + 500.0 + 100.0


def test_disconnects_older_than_24h_are_not_flaps(tenants, client_as, clock):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-old", at=clock.ago(90_000))
    close_connection("conn-old", at=clock.ago(86_401))
    open_connection(subscription, name="conn-new", at=clock.ago(100))
    observer_beat(clock)

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope["flaps_24h"] == 0
    assert envelope["uptime_24h_seconds"] == 100.0


def test_stale_observer_serves_the_envelope_as_unknown_observer_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))
    observer_beat(clock, seconds_ago=THRESHOLDS["observer_stale_after_seconds"] + 1)

    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert response.status_code == 200
    envelope = response.json()["connection"]
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "unknown",
        "unknown",
        "observer_unavailable",
    )


def test_observer_that_cannot_reach_the_broker_serves_the_envelope_as_unknown_broker_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))
    observer_beat(clock, is_broker_available=False)

    # when
    response = post(client_as("staff"), GET_CONNECTION, {"instance_id": str(tenants.agent_a.uuid)})

    # then
    assert response.status_code == 200
    envelope = response.json()["connection"]
    assert (envelope["connection_status"], envelope["status"], envelope["status_reason"]) == (
        "unknown",
        "unknown",
        "broker_unavailable",
    )
    assert (envelope["owner_pod"], envelope["open_connections"]) == (NODE, 1)
    assert envelope["connected_since"] == iso(clock.ago(600))


def test_connected_agent_without_observer_row_is_unknown_observer_unavailable(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    open_connection(subscription, name="conn-1", at=clock.ago(600))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert (envelope["connection_status"], envelope["status_reason"]) == (
        "unknown",
        "observer_unavailable",
    )
