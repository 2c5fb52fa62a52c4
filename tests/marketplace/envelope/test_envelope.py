"""The connection envelope (POST /api/agents/get_connection/): its whole shape for a
hosted and for a connected agent, the thresholds in force, and the transport.

Time is a stopped clock, so every timestamp in the envelope is asserted exactly.
"""

import pytest

from tests.kit.envelope import (
    NODE,
    THRESHOLDS,
    fetch_envelope,
    iso,
    observer_beat,
    open_connection,
    subscribe,
)


def test_envelope_of_a_hosted_agent_never_seen_is_unknown_never_seen_over_polling(
    tenants, client_as
):
    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope == {
        "instance_id": str(tenants.agent_a.uuid),
        "agent_type": "waldur-site-agent",
        "tenant_id": str(tenants.customer_a.uuid),
        "deployment_mode": "hosted",
        "transport": "callback",
        "transport_detail": "polling",
        "connection_status": "unknown",
        "status": "unknown",
        "status_reason": "never_seen",
        "owner_pod": None,
        "connected_since": None,
        "open_connections": 0,
        "last_dispatch_at": None,
        "dispatches_succeeded": 0,
        "dispatches_failed": 0,
        "last_dispatch_error": None,
        "last_seen": None,
        "last_heartbeat_at": None,
        "ws_mesh_pod_id": None,
        "ws_last_seen": None,
        "uptime_24h_seconds": 0.0,
        "flaps_24h": 0,
        "thresholds": THRESHOLDS,
        "last_error_log": None,
    }


def test_envelope_thresholds_are_the_settings_in_force(tenants, client_as, settings):
    # given
    settings.AGENT_HEALTHY_SEEN_SECONDS = 30
    settings.AGENT_OFFLINE_AFTER_SECONDS = 90
    settings.AGENT_DEGRADED_WINDOW_SECONDS = 45
    settings.AGENT_FLAP_THRESHOLD = 2
    settings.OBSERVER_STALE_AFTER_SECONDS = 15

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope["thresholds"] == {
        "healthy_seen_seconds": 30.0,
        "offline_after_seconds": 90.0,
        "degraded_window_seconds": 45.0,
        "flap_threshold": 2,
        "observer_stale_after_seconds": 15.0,
    }


def test_envelope_of_an_agent_with_a_web_stomp_connection_is_online_over_ws(
    tenants, client_as, clock
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="10.0.0.7:41000 -> 10.0.0.2:15674", at=clock.ago(600))

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope == {
        "instance_id": str(tenants.agent_a.uuid),
        "agent_type": "waldur-site-agent",
        "tenant_id": str(tenants.customer_a.uuid),
        "deployment_mode": "connected",
        "transport": "ws",
        "transport_detail": "ws",
        "connection_status": "online",
        "status": "available",
        "status_reason": "connected",
        "owner_pod": NODE,
        "connected_since": iso(clock.ago(600)),
        "open_connections": 1,
        "last_dispatch_at": None,
        "dispatches_succeeded": 0,
        "dispatches_failed": 0,
        "last_dispatch_error": None,
        "last_seen": None,
        "last_heartbeat_at": None,
        "ws_mesh_pod_id": NODE,
        "ws_last_seen": iso(clock.ago(600)),
        "uptime_24h_seconds": 600.0,
        "flaps_24h": 0,
        "thresholds": THRESHOLDS,
        "last_error_log": None,
    }


@pytest.mark.parametrize(
    ("protocol", "transport_detail", "ws_mesh_pod_id"),
    [("STOMP 1.2", "stomp", None), ("AMQP 0-9-1", "amqp", None), ("Web STOMP 1.2", "ws", NODE)],
)
def test_envelope_transport_detail_follows_the_broker_protocol(
    tenants, client_as, clock, protocol, transport_detail, ws_mesh_pod_id
):
    # given
    subscription = subscribe(tenants.agent_a)
    observer_beat(clock)
    open_connection(subscription, name="conn-1", at=clock.ago(60), protocol=protocol)

    # when
    envelope = fetch_envelope(client_as("staff"), tenants.agent_a)

    # then
    assert envelope["transport"] == "ws"
    assert (envelope["transport_detail"], envelope["owner_pod"], envelope["ws_mesh_pod_id"]) == (
        transport_detail,
        NODE,
        ws_mesh_pod_id,
    )
