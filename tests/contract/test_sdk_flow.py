"""The agent registration flow, end to end: the real SDK (both lines) against a live server,
then the real broker shows what was provisioned and a real STOMP-over-WebSocket client
consumes from the queue."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import stomp
from rest_framework.authtoken.models import Token

from marketplace.models import AgentIdentity, EventSubscription, EventSubscriptionQueue
from rmq.naming import build_queues_read_pattern
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get, publish
from tests.kit.sdk import sdk_path_for

FLOW_SCRIPT = Path(__file__).with_name("sdk_flow.py")
WEB_STOMP_PORT = 15674


def run_sdk_flow(*, base_url: str, token: str, offering_uuid: str, sdk_path: Path | None) -> dict:
    env = dict(os.environ)
    if sdk_path is not None:
        env["PYTHONPATH"] = str(sdk_path)
    completed = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(FLOW_SCRIPT), base_url, token, offering_uuid],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


class CollectingListener(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.received = threading.Event()
        self.disconnected = threading.Event()

    def on_message(self, frame) -> None:
        self.bodies.append(frame.body)
        self.received.set()

    def on_disconnected(self) -> None:
        self.disconnected.set()


@pytest.fixture
def agent_owner(transactional_db):
    owner = UserFactory(username="site-agent-owner")
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    return owner, offering, Token.objects.get(user=owner).key


@pytest.mark.parametrize("sdk_version", ["8.1.3", "8.0.9", "8.0.0"])
def test_sdk_registration_flow_provisions_broker_and_delivers_over_web_stomp(
    sdk_version, live_server, real_broker, agent_owner
):
    # given an offering owner with an API token and a live server
    owner, offering, token = agent_owner
    sdk_path = sdk_path_for(sdk_version)

    # when the SDK runs the agent's registration flow
    result = run_sdk_flow(
        base_url=live_server.url, token=token, offering_uuid=str(offering.uuid), sdk_path=sdk_path
    )

    # then every response parsed with the SDK's models and registrations were idempotent
    assert result["sdk_version"] == sdk_version
    assert result["seen_before"] == 0
    assert result["found"] == [result["identity_uuid"]]
    assert result["updated_version"] == "1.0.1"
    assert result["fetched_version"] == "1.0.1"
    assert result["fetched_last_restarted"].startswith("2026-11-26T00:34:36.841690")
    assert result["fetched_services"] == []
    assert result["service_state"] == "Active"
    assert result["service_identity"] == result["identity_uuid"]
    assert result["processor_service_name"] == "event_process"
    assert result["statistics"] == {"orders_processed": 3}
    assert result["subscription_again_uuid"] == result["subscription_uuid"]
    assert result["observable_objects"] == ["order"]
    assert AgentIdentity.objects.count() == 1
    assert EventSubscription.objects.count() == 1
    assert EventSubscriptionQueue.objects.count() == 1
    subscription_hex = result["subscription_uuid"]
    vhost = owner.uuid.hex
    queue_name = f"subscription_{subscription_hex}_offering_{offering.uuid.hex}_order"
    assert result["user_uuid"] == vhost
    assert result["queue_name"] == queue_name
    assert result["queue_vhost"] == vhost

    # and the broker has the vhost, the user, read-only access to its queue, a durable queue
    assert management_get(f"vhosts/{vhost}").status_code == 200
    broker_user = management_get(f"users/{subscription_hex}")
    assert broker_user.status_code == 200
    assert broker_user.json()["tags"] in ("", [])
    permissions = management_get(f"permissions/{vhost}/{subscription_hex}").json()
    assert permissions["configure"] == permissions["write"] == "^$"
    assert permissions["read"] == build_queues_read_pattern([queue_name])
    queue = management_get(f"queues/{vhost}/{queue_name}").json()
    assert queue["durable"] is True
    assert queue["auto_delete"] is False

    # when a STOMP-over-WebSocket client logs in as the subscription and subscribes
    listener = CollectingListener()
    connection = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", WEB_STOMP_PORT)], ws_path="/ws", vhost=vhost
    )
    connection.set_listener("collect", listener)
    connection.connect(login=subscription_hex, passcode=token, wait=True)
    try:
        connection.subscribe(destination=f"/amq/queue/{queue_name}", id="q", ack="auto")
        # and a message is published to its queue
        publish(vhost=vhost, queue_name=queue_name, payload='{"order_uuid": "abc"}')

        # then the agent's client receives it
        assert listener.received.wait(timeout=20)
        assert listener.bodies == ['{"order_uuid": "abc"}']
    finally:
        connection.disconnect()


def test_subscription_user_cannot_read_another_subscriptions_queue(
    live_server, real_broker, agent_owner
):
    # given two agents of one owner, each with its own subscription and queue
    owner, offering, token = agent_owner
    first = run_sdk_flow(
        base_url=live_server.url, token=token, offering_uuid=str(offering.uuid), sdk_path=None
    )
    other_offering = OfferingFactory(customer=offering.customer)
    second = run_sdk_flow(
        base_url=live_server.url,
        token=token,
        offering_uuid=str(other_offering.uuid),
        sdk_path=None,
    )
    assert first["subscription_uuid"] != second["subscription_uuid"]

    # and a message waits in the second queue
    vhost = owner.uuid.hex
    publish(vhost=vhost, queue_name=second["queue_name"], payload='{"order_uuid": "secret"}')

    # when the first subscription's user subscribes to the second one's queue
    listener = CollectingListener()
    connection = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", WEB_STOMP_PORT)], ws_path="/ws", vhost=vhost
    )
    connection.set_listener("collect", listener)
    connection.connect(login=first["subscription_uuid"], passcode=token, wait=True)
    try:
        connection.subscribe(destination=f"/amq/queue/{second['queue_name']}", id="x", ack="auto")
        # then the broker closes the connection (access refused) ...
        assert listener.disconnected.wait(timeout=20)
    finally:
        if connection.is_connected():
            connection.disconnect()

    # ... nothing was delivered, and the message is still in the other agent's queue
    assert listener.bodies == []
    # (the broker refreshes a queue's message count every few seconds)
    wait_until(
        lambda: (
            management_get(f"queues/{vhost}/{second['queue_name']}").json().get("messages") == 1
        ),
        timeout=20,
        interval=0.5,
        message="the other agent's queue holds the message",
    )


def test_register_event_subscription_answers_503_and_writes_nothing_when_broker_port_is_closed(
    settings, client_for, identity, owner
):
    # given a management URL where nothing listens
    settings.RABBITMQ_MANAGEMENT_URL = "http://127.0.0.1:9"
    client = client_for(owner)

    # when the agent registers an event subscription
    response = client.post(
        f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/register_event_subscription/",
        {"observable_object_type": "order"},
        format="json",
    )

    # then it gets a 503 in DRF's shape, and no subscription row exists (the time it takes
    # is the client's connect timeout, tested in tests/rmq/test_client.py, not here)
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert EventSubscription.objects.count() == 0
