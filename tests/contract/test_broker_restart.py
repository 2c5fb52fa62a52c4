"""A broker restart while an agent is connected, on a dedicated RabbitMQ node: the stats
say 503 during the outage and show the reconnect after it; provisioning during the outage
fails with 503, writes nothing, and a retry converges."""

import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
import stomp
from rest_framework.authtoken.models import Token

from marketplace.models import EventSubscription
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until
from tests.kit.services import require_service

NODE_SCRIPT = ROOT / "scripts" / "test_broker_node.sh"
MANAGEMENT = "http://127.0.0.1:15682"
WEB_STOMP_PORT = 15684
WAIT_SECONDS = 30


def node(command: str) -> None:
    completed = subprocess.run(  # noqa: S603 - our own script
        ["/bin/bash", str(NODE_SCRIPT), command], capture_output=True, text=True, timeout=150
    )
    assert completed.returncode == 0, f"{command}: {completed.stderr[-2000:]}"


@pytest.fixture(scope="module")
def dedicated_broker() -> Iterator[str]:
    require_service(shutil.which("rabbitmq-server") is not None, "rabbitmq-server installed")
    node("start")
    try:
        yield MANAGEMENT
    finally:
        node("stop")


def connect_agent(vhost: str, login: str, passcode: str, queue: str) -> stomp.WSStompConnection:
    connection = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", WEB_STOMP_PORT)], ws_path="/ws", vhost=vhost
    )
    connection.connect(login=login, passcode=passcode, wait=True)
    connection.subscribe(destination=f"/amq/queue/{queue}", id="q", ack="auto")
    return connection


def live_connection(client):
    response = client.get(STATS_URL)
    if response.status_code != 200:
        return None
    rmq = response.json()["agents"][0]["event_subscriptions"][0]["rmq_connection"]
    return rmq if rmq["connected"] else None


def test_stats_and_provisioning_through_a_broker_restart(
    dedicated_broker, settings, db, client_for
):
    # given the app pointed at a dedicated node and an agent registered there
    settings.RABBITMQ_MANAGEMENT_URL = dedicated_broker
    settings.BROKER_SNAPSHOT_TTL = 0
    owner = UserFactory()
    offering = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    identity = AgentIdentityFactory(offering=offering, created_by=owner)
    token = Token.objects.get(user=owner).key
    agent_api = client_for(owner)
    support = client_for(UserFactory(is_support=True))
    base = f"/api/marketplace-site-agent-identities/{identity.uuid.hex}"
    registered = agent_api.post(
        f"{base}/register_event_subscription/", {"observable_object_type": "order"}, format="json"
    )
    assert registered.status_code == 201
    subscription_hex = registered.json()["uuid"].replace("-", "")
    queue = agent_api.post(
        f"/api/event-subscriptions/{subscription_hex}/create_queue/",
        {"offering_uuid": str(offering.uuid), "object_type": "order"},
        format="json",
    ).json()["queue_name"]
    # and the agent connected over STOMP over WebSocket
    agent = connect_agent(owner.uuid.hex, subscription_hex, token, queue)
    before = wait_until(
        lambda: live_connection(support),
        timeout=WAIT_SECONDS,
        interval=0.5,
        message="the agent is reported connected",
    )

    # when the broker restarts
    node("stop_app")
    try:
        # then the stats say the broker cannot be asked (not "disconnected")
        outage = support.get(STATS_URL)
        assert outage.status_code == 503
        assert outage.json()["code"] == "broker_unavailable"
        # and provisioning fails with 503 and writes nothing
        failed = agent_api.post(
            f"{base}/register_event_subscription/",
            {"observable_object_type": "resource"},
            format="json",
        )
        assert failed.status_code == 503
        assert EventSubscription.objects.count() == 1
    finally:
        node("start_app")
    if agent.is_connected():
        agent.disconnect()

    # when the agent reconnects, as the real agent's retry loop does
    agent = wait_until(
        lambda: _try_connect(owner.uuid.hex, subscription_hex, token, queue),
        timeout=WAIT_SECONDS,
        interval=0.5,
        message="the agent reconnects to the restarted broker",
    )
    try:
        # then the stats show the new connection
        after = wait_until(
            lambda: (
                (conn := live_connection(support))
                and conn["connected_at"] != before["connected_at"]
                and conn
            ),
            timeout=WAIT_SECONDS,
            interval=0.5,
            message="the stats show the reconnect",
        )
        assert datetime.fromisoformat(after["connected_at"]) > datetime.fromisoformat(
            before["connected_at"]
        )
        # and the provisioning retry converges
        retried = agent_api.post(
            f"{base}/register_event_subscription/",
            {"observable_object_type": "resource"},
            format="json",
        )
        assert retried.status_code == 201
        assert EventSubscription.objects.count() == 2
        new_user = retried.json()["uuid"].replace("-", "")
        assert (
            requests.get(
                f"{dedicated_broker}/api/users/{new_user}", auth=("guest", "guest"), timeout=5
            ).status_code
            == 200
        )
    finally:
        agent.disconnect()


def _try_connect(vhost: str, login: str, passcode: str, queue: str):
    try:
        return connect_agent(vhost, login, passcode, queue)
    except (stomp.exception.StompException, OSError):
        return None
