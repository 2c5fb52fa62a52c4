"""The connection-stats endpoint against the real RabbitMQ: real STOMP-over-WebSocket and
AMQP clients connect as subscription users, real messages wait in real queues."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
import pytest
import requests
import stomp
from rest_framework.authtoken.models import Token

from marketplace.registration.services import register_agent_service
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.fleet import Fleet
from tests.kit.polling import wait_until
from tests.kit.real_broker import provision_agent, publish
from tests.kit.sdk import sdk_path_for

SDK_STATS_SCRIPT = Path(__file__).with_name("sdk_stats.py")
WAIT_SECONDS = 25


def poll_stats(live_server, token: str, until, **params) -> dict:
    """GET the stats until `until(body)` holds; return that body."""

    def fetch() -> dict | None:
        response = requests.get(
            f"{live_server.url}{STATS_URL}",
            params=params,
            headers={"Authorization": f"Token {token}"},
            timeout=15,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body if until(body) else None

    return wait_until(
        fetch, timeout=WAIT_SECONDS, interval=0.5, message=f"the stats satisfy {until.__name__}"
    )


def agent_entry(body: dict, identity) -> dict:
    return next(agent for agent in body["agents"] if agent["uuid"] == str(identity.uuid))


@pytest.fixture
def fleet(transactional_db, real_broker):
    """Two agents of one owner on one offering, each with one subscription and queue."""
    owner = UserFactory(username="fleet-owner")
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    fleet = Fleet()
    first = fleet.add_agent("agent-ws", offering=offering, created_by=owner)
    second = fleet.add_agent("agent-amqp", offering=offering, created_by=owner)
    first_sub, first_queue = provision_agent(first, owner=owner, object_type="order")
    second_sub, second_queue = provision_agent(second, owner=owner, object_type="resource")
    support = UserFactory(username="support-person", is_support=True)
    return {
        "owner_token": Token.objects.get(user=owner).key,
        "support_token": Token.objects.get(user=support).key,
        "vhost": owner.uuid.hex,
        "first": (first, first_sub, first_queue),
        "second": (second, second_sub, second_queue),
    }


def test_stats_report_real_web_stomp_and_amqp_connections_and_queue_depths(live_server, fleet):
    first, first_sub, first_queue = fleet["first"]
    second, second_sub, second_queue = fleet["second"]
    vhost = fleet["vhost"]

    # given a STOMP-over-WebSocket client consuming the first agent's queue
    ws = stomp.WSStompConnection(host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=vhost)
    ws.connect(login=first_sub.uuid.hex, passcode=fleet["owner_token"], wait=True)
    ws.subscribe(destination=f"/amq/queue/{first_queue.queue_name}", id="q", ack="client")
    # and an AMQP client logged in as the second agent's subscription, consuming nothing
    amqp = pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            virtual_host=vhost,
            credentials=pika.PlainCredentials(second_sub.uuid.hex, fleet["owner_token"]),
        )
    )
    # and three messages waiting in the second agent's queue
    for number in range(3):
        publish(vhost=vhost, queue_name=second_queue.queue_name, payload=f'{{"n": {number}}}')
    started = datetime.now(UTC)

    try:
        # when support asks for the stats until the broker has reported everything
        def is_complete(body: dict) -> bool:
            agents = {agent["name"]: agent for agent in body["agents"]}
            ws_conn = agents["agent-ws"]["event_subscriptions"][0]["rmq_connection"]
            return (
                ws_conn["connected"]
                and (ws_conn["recv_oct"] or 0) > 0
                and (ws_conn["send_oct"] or 0) > 0
                and agents["agent-amqp"]["event_subscriptions"][0]["rmq_connection"]["connected"]
                and agents["agent-amqp"]["queues"][0]["messages"] == 3
                and agents["agent-ws"]["queues"][0]["consumers"] == 1
            )

        body = poll_stats(live_server, fleet["support_token"], is_complete)

        # then both agents are connected, from 127.0.0.1, recently, with bytes counted
        ws_agent = agent_entry(body, first)
        ws_connection = ws_agent["event_subscriptions"][0]["rmq_connection"]
        assert ws_agent["connected"] is True
        assert ws_connection["connected"] is True
        assert ws_connection["source_ip"] == "127.0.0.1"
        connected_at = datetime.fromisoformat(ws_connection["connected_at"])
        assert started - timedelta(seconds=60) < connected_at <= datetime.now(UTC)
        assert ws_connection["recv_oct"] > 0
        assert ws_connection["send_oct"] > 0
        assert ws_connection["state"] == "running"
        amqp_agent = agent_entry(body, second)
        amqp_connection = amqp_agent["event_subscriptions"][0]["rmq_connection"]
        assert amqp_connection["connected"] is True
        assert amqp_connection["source_ip"] == "127.0.0.1"
        # and each agent sees only its own queue, with exact depth and consumers
        assert [q["name"] for q in ws_agent["queues"]] == [first_queue.queue_name]
        assert [q["name"] for q in amqp_agent["queues"]] == [second_queue.queue_name]
        assert ws_agent["queues"][0]["consumers"] == 1
        assert ws_agent["queues"][0]["messages"] == 0
        assert amqp_agent["queues"][0]["messages"] == 3
        assert amqp_agent["queues"][0]["consumers"] == 0
        assert amqp_agent["queues"][0]["object_type"] == "resource"
        assert amqp_agent["queues"][0]["kind"] == "legacy"
        assert body["summary"]["total_agents"] == 2
        assert body["summary"]["connected_agents"] == 2
        assert body["summary"]["total_queued_messages"] == 3
    finally:
        ws.disconnect()
        amqp.close()

    # when the clients have gone
    def is_disconnected(body: dict) -> bool:
        return body["summary"]["connected_agents"] == 0

    body = poll_stats(live_server, fleet["support_token"], is_disconnected)

    # then both agents are reported disconnected
    assert agent_entry(body, first)["connected"] is False
    assert agent_entry(body, first)["event_subscriptions"][0]["rmq_connection"] == {
        "connected": False,
        "source_ip": None,
        "connected_at": None,
        "state": None,
        "recv_oct": None,
        "send_oct": None,
        "node": None,
        "protocol": None,
    }
    assert body["summary"]["disconnected_agents"] == 2


def test_stats_connected_filter_follows_a_live_client(live_server, fleet):
    first, first_sub, _ = fleet["first"]
    second = fleet["second"][0]
    ws = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=fleet["vhost"]
    )
    ws.connect(login=first_sub.uuid.hex, passcode=fleet["owner_token"], wait=True)
    try:
        # when support filters for connected and for disconnected agents
        connected = poll_stats(
            live_server,
            fleet["support_token"],
            lambda body: body["summary"]["total_agents"] == 1,
            connected="true",
        )
        disconnected = poll_stats(
            live_server, fleet["support_token"], lambda body: True, connected="false"
        )
    finally:
        ws.disconnect()

    # then each side lists exactly one agent and the summary follows the filter
    assert [agent["uuid"] for agent in connected["agents"]] == [str(first.uuid)]
    assert connected["summary"]["connected_agents"] == 1
    assert [agent["uuid"] for agent in disconnected["agents"]] == [str(second.uuid)]
    assert disconnected["summary"]["disconnected_agents"] == 1


def run_sdk_stats(live_server, token: str, sdk_version: str, *flags: str) -> dict:
    env = dict(os.environ)
    sdk_path = sdk_path_for(sdk_version)
    if sdk_path is not None:
        env["PYTHONPATH"] = str(sdk_path)
    completed = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(SDK_STATS_SCRIPT), live_server.url, token, *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.mark.parametrize(
    ("sdk_version", "flags"),
    [
        ("8.0.0", ()),
        ("8.0.9", ("--observable-objects-as-object",)),
        ("8.1.3", ("--observable-objects-as-object",)),
    ],
)
def test_stats_response_parses_with_the_real_sdk(live_server, fleet, sdk_version, flags):
    # given the fleet (agents with services, subscriptions and queues)
    first = fleet["first"][0]
    register_agent_service(first, name="order_process", mode="order_process")

    # when the SDK fetches and parses the stats
    result = run_sdk_stats(live_server, fleet["support_token"], sdk_version, *flags)

    # then it parses every key (8.0.0 the whole body through sync(); later lines all but
    # observable_objects, which they type as an object while the spec keeps the list)
    assert result["sdk_version"] == sdk_version
    assert result["type"] == "AgentConnectionStatsResponse"
    assert result["total_agents"] == 2
    assert set(result["connected"]) == {first.uuid.hex, fleet["second"][0].uuid.hex}
    assert result["queues"] == [1, 1]
    assert result["queue_kinds"] == ["legacy"]
    assert result["service_states"] == ["ACTIVE"]
