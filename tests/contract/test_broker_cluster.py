"""The service on a real 3-node RabbitMQ cluster (scripts/test_broker_cluster.sh, private
node names and ports; the machine's broker is not touched): agents connected to different
nodes, a node stopped, the first listed node stopped.

Agents are provisioned through the API (register_event_subscription, create_queue,
register_queue) and connect with real STOMP-over-WebSocket clients as their broker users;
a real ConnectionObserver runs in a thread, pointed at the cluster's AMQP list.
"""

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import stomp
from django.utils import timezone
from rest_framework.authtoken.models import Token

from marketplace.envelope.selectors import build_connection_envelope
from marketplace.models import AgentConnectionEvent, AgentIdentity, ObserverStatus
from rmq.client import BrokerCall, ManagementClient, listen_to_broker_calls
from rmq.nodes import PROCESS_NODE_MEMORY
from rmq.snapshot import fetch_broker_snapshot
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.metrics import parse_samples, sample
from tests.kit.observer_thread import ObserverThread
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until
from tests.kit.services import require_service

CLUSTER_SCRIPT = ROOT / "scripts" / "test_broker_cluster.sh"
NODES = (1, 2, 3)
MANAGEMENT_URLS = ",".join(f"http://127.0.0.1:1570{n}" for n in NODES)
AMQP_URLS = ",".join(f"amqp://guest:guest@127.0.0.1:570{n}/%2F" for n in NODES)
WAIT_SECONDS = 60
IDENTITIES = "/api/marketplace-site-agent-identities"


def node_name(n: int) -> str:
    return f"agentstats-c{n}@localhost"


def management_node(n: int) -> str:
    return f"127.0.0.1:1570{n}"


def run_cluster_script(*args: str) -> None:
    completed = subprocess.run(  # noqa: S603 - our own script
        ["/bin/bash", str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=400
    )
    assert completed.returncode == 0, f"{args}: {completed.stderr[-2000:]}"


@pytest.fixture(scope="module")
def broker_cluster() -> Iterator[None]:
    require_service(
        shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None,
        "rabbitmq-server installed (for the private 3-node cluster)",
    )
    run_cluster_script("start")
    try:
        yield
    finally:
        run_cluster_script("stop")


@pytest.fixture
def on_cluster(broker_cluster, settings, transactional_db) -> Iterator[None]:
    """The app and the observer pointed at the cluster's three nodes, every snapshot fresh."""
    settings.RABBITMQ_MANAGEMENT_URL = MANAGEMENT_URLS
    settings.RABBITMQ_AMQP_URL = AMQP_URLS
    settings.BROKER_SNAPSHOT_TTL = 0
    settings.OBSERVER_HEARTBEAT_SECONDS = 0.5
    # Longer than any test, so a node that failed stays skipped for the whole test.
    settings.RABBITMQ_NODE_DOWN_SECONDS = 300
    PROCESS_NODE_MEMORY.forget_all()
    yield
    PROCESS_NODE_MEMORY.forget_all()


@pytest.fixture
def stopped_nodes() -> Iterator[list[int]]:
    """Nodes a test stops; each is started again at the end, whatever happened."""
    stopped: list[int] = []
    yield stopped
    for n in stopped:
        run_cluster_script("start_node", str(n))


def stop_node(stopped: list[int], n: int) -> None:
    stopped.append(n)
    run_cluster_script("stop_node", str(n))


@dataclass
class ClusterAgent:
    identity: AgentIdentity
    vhost: str
    token: str
    subscription_login: str
    subscription_queue: str
    consumer_login: str | None = None
    consumer_queue: str | None = None


def register_agent(client_for, *, name: str, with_consumer: bool = False) -> ClusterAgent:
    """An agent with a legacy subscription and its queue (and an event consumer), all
    provisioned through the API on the cluster."""
    owner: Any = UserFactory()
    offering: Any = OfferingFactory(customer=CustomerFactory(owners=[owner]))
    identity: Any = AgentIdentityFactory(offering=offering, created_by=owner, name=name)
    api = client_for(owner)
    subscription = api.post(
        f"{IDENTITIES}/{identity.uuid.hex}/register_event_subscription/",
        {"observable_object_type": "order"},
        format="json",
    )
    assert subscription.status_code == 201, subscription.content
    login = subscription.json()["uuid"].replace("-", "")
    queue = api.post(
        f"/api/event-subscriptions/{login}/create_queue/",
        {"offering_uuid": str(offering.uuid), "object_type": "order"},
        format="json",
    )
    assert queue.status_code in (200, 201), queue.content
    agent = ClusterAgent(
        identity=identity,
        vhost=owner.uuid.hex,
        token=Token.objects.get(user=owner).key,
        subscription_login=login,
        subscription_queue=queue.json()["queue_name"],
    )
    if with_consumer:
        consumer = api.post(f"{IDENTITIES}/{identity.uuid.hex}/register_queue/", {}, format="json")
        assert consumer.status_code == 201, consumer.content
        agent.consumer_login = consumer.json()["rmq_username"]
        agent.consumer_queue = consumer.json()["queue_name"]
    return agent


def management(method: str, path: str, *, node: int = 1, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"http://127.0.0.1:1570{node}/api/{path}",
        auth=("guest", "guest"),
        timeout=30,
        **kwargs,
    )


def move_queue_to_node(vhost: str, name: str, n: int) -> None:
    """Declare the queue again on node `n` with its own arguments (a classic queue lives
    on the node that declared it; the service declares through the first node)."""
    current = management("GET", f"queues/{vhost}/{name}")
    assert current.status_code == 200, current.text
    arguments = current.json()["arguments"]
    assert management("DELETE", f"queues/{vhost}/{name}").status_code == 204
    declared = management(
        "PUT",
        f"queues/{vhost}/{name}",
        json={"durable": True, "auto_delete": False, "arguments": arguments, "node": node_name(n)},
    )
    assert declared.status_code in (201, 204), declared.text
    moved = management("GET", f"queues/{vhost}/{name}").json()
    assert moved["node"] == node_name(n)


def connect(agent: ClusterAgent, n: int, *, as_consumer: bool = False) -> stomp.WSStompConnection:
    """A real agent connection over Web STOMP to node `n`, reading its queue."""
    login = agent.consumer_login if as_consumer else agent.subscription_login
    queue = agent.consumer_queue if as_consumer else agent.subscription_queue
    client = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15710 + n)], ws_path="/ws", vhost=agent.vhost
    )
    client.connect(login=login, passcode=agent.token, wait=True)
    client.subscribe(destination=f"/amq/queue/{queue}", id="q", ack="auto")
    return client


@pytest.fixture
def observer(on_cluster) -> Iterator[ObserverThread]:
    running = ObserverThread(wait_seconds=WAIT_SECONDS)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def clients() -> Iterator[list[stomp.WSStompConnection]]:
    opened: list[stomp.WSStompConnection] = []
    yield opened
    for client in opened:
        if client.is_connected():
            client.disconnect()


def stats_of(support) -> dict[str, Any]:
    response = support.get(STATS_URL)
    assert response.status_code == 200, response.content
    return response.json()


def agent_entry(body: dict[str, Any], agent: ClusterAgent) -> dict[str, Any]:
    (entry,) = [item for item in body["agents"] if item["uuid"] == str(agent.identity.uuid)]
    return entry


def subscription_node(body: dict[str, Any], agent: ClusterAgent) -> str | None:
    connection = agent_entry(body, agent)["event_subscriptions"][0]["rmq_connection"]
    return connection["node"] if connection["connected"] else None


def events_of(agent: ClusterAgent) -> list[tuple[str, str]]:
    return [
        (event.kind, event.reason)
        for event in AgentConnectionEvent.objects.filter(identity=agent.identity).order_by(
            "occurred_at", "id"
        )
    ]


def owner_pod(agent: ClusterAgent) -> str:
    return build_connection_envelope(agent.identity, now=timezone.now()).state.owner_pod


def test_agents_on_different_nodes_are_reported_on_their_own_nodes(
    on_cluster, observer, clients, client_for
):
    # given three agents, the second's queue on node 2, each connected to its own node,
    # and the observer (consuming events on node 1) running before they connect
    agents = [register_agent(client_for, name=f"agent-{n}") for n in NODES]
    move_queue_to_node(agents[1].vhost, agents[1].subscription_queue, 2)
    for n, agent in zip(NODES, agents, strict=True):
        clients.append(connect(agent, n))
    support = client_for(UserFactory(is_support=True))

    # when the stats are asked
    body = wait_until(
        lambda: (
            (answer := stats_of(support))
            and all(subscription_node(answer, agent) for agent in agents)
            and answer
        ),
        timeout=WAIT_SECONDS,
        message="every agent is reported connected",
    )

    # then each connection is on its own node, and the first management node answered
    assert [subscription_node(body, agent) for agent in agents] == [node_name(n) for n in NODES]
    assert body["summary"]["broker_node"] == management_node(1)
    assert body["summary"]["queues_on_down_nodes"] == 0
    queues = [agent_entry(body, agent)["queues"][0] for agent in agents]
    assert [(queue["node"], queue["state"]) for queue in queues] == [
        (node_name(1), "running"),
        (node_name(2), "running"),
        (node_name(1), "running"),
    ]
    # and the observer, on node 1, received every node's connection.created event
    for n, agent in zip(NODES, agents, strict=True):
        wait_until(
            lambda agent=agent, n=n: owner_pod(agent) == node_name(n),
            timeout=WAIT_SECONDS,
            message=f"the envelope's owner_pod of agent-{n} is its node",
        )
        assert events_of(agent) == [("connected", "opened")]


def test_one_node_down_is_reported_honestly_and_is_not_an_outage(
    on_cluster, observer, clients, client_for, stopped_nodes
):
    # given an agent on node 1 and one on node 2 whose queues live on node 2
    steady = register_agent(client_for, name="steady")
    doomed = register_agent(client_for, name="doomed", with_consumer=True)
    assert doomed.consumer_queue is not None
    move_queue_to_node(doomed.vhost, doomed.subscription_queue, 2)
    move_queue_to_node(doomed.vhost, doomed.consumer_queue, 2)
    clients.append(connect(steady, 1))
    clients.extend([connect(doomed, 2), connect(doomed, 2, as_consumer=True)])
    support = client_for(UserFactory(is_support=True))
    wait_until(
        lambda: (
            subscription_node(stats_of(support), doomed) == node_name(2)
            and subscription_node(stats_of(support), steady) == node_name(1)
        ),
        timeout=WAIT_SECONDS,
        message="both agents are reported connected",
    )
    wait_until(
        lambda: owner_pod(doomed) == node_name(2),
        timeout=WAIT_SECONDS,
        message="the observer recorded the doomed agent on node 2",
    )

    # when node 2 stops
    stop_node(stopped_nodes, 2)

    # then the stats still answer 200: the doomed agent is disconnected, its queues exist
    # with unknown depth on a down node, and the steady agent is untouched
    body = wait_until(
        lambda: (
            (answer := stats_of(support))
            and not agent_entry(answer, doomed)["connected"]
            and answer
        ),
        timeout=WAIT_SECONDS,
        message="the agent on the stopped node is reported disconnected",
    )
    doomed_entry = agent_entry(body, doomed)
    assert doomed_entry["delivery_blocked_reason"] == "queue_node_down"
    assert {
        queue["name"]: (
            queue["exists_on_broker"],
            queue["messages"],
            queue["state"],
            queue["node"],
        )
        for queue in doomed_entry["queues"]
    } == {
        doomed.consumer_queue: (True, None, "down", node_name(2)),
        doomed.subscription_queue: (True, None, "down", node_name(2)),
    }
    assert subscription_node(body, steady) == node_name(1)
    assert body["summary"]["queues_on_down_nodes"] == 2
    assert body["summary"]["queues_missing_on_broker"] == 0
    assert body["summary"]["broker_node"] == management_node(1)
    # and the observer recorded the closes of both of its connections
    wait_until(
        lambda: owner_pod(doomed) == "",
        timeout=WAIT_SECONDS,
        message="the envelope has no open connection for the doomed agent",
    )
    assert events_of(doomed)[-1] == ("disconnected", "closed")
    assert owner_pod(steady) == node_name(1)


def test_with_the_first_node_down_management_and_observer_fail_over(
    on_cluster, observer, clients, client_for, stopped_nodes
):
    # given an agent connected to node 3, seen by the observer (consuming on node 1)
    agent = register_agent(client_for, name="survivor")
    client = connect(agent, 3)
    clients.append(client)
    support = client_for(UserFactory(is_support=True))
    wait_until(
        lambda: owner_pod(agent) == node_name(3),
        timeout=WAIT_SECONDS,
        message="the observer recorded the agent on node 3",
    )

    # when the FIRST listed node stops
    stopped_at = timezone.now()
    stop_node(stopped_nodes, 1)

    # then the stats answer 200 from node 2, within a generous bound
    started = time.monotonic()
    response = support.get(STATS_URL)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert elapsed < WAIT_SECONDS
    body = response.json()
    assert body["summary"]["broker_node"] == management_node(2)
    assert subscription_node(body, agent) == node_name(3)
    # its queue was declared through node 1, so it lives there: down, not missing
    (queue,) = agent_entry(body, agent)["queues"]
    assert (queue["exists_on_broker"], queue["messages"], queue["state"]) == (True, None, "down")
    # and the process remembers node 1 as down: the next snapshot does not ask it again
    broker = ManagementClient.from_settings()
    assert broker.nodes_remembered_down() == (management_node(1),)
    asked: list[BrokerCall] = []
    with listen_to_broker_calls(asked.append):
        snapshot = fetch_broker_snapshot(broker)
    assert snapshot.answered_by == management_node(2)
    assert {call.node for call in asked} == {management_node(2)}
    assert len(asked) == 3
    assert stats_of(support)["summary"]["broker_node"] == management_node(2)
    # and /metrics says which node answered and which one is remembered down
    scrape = support.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert scrape.status_code == 200
    samples = parse_samples(scrape.content.decode())
    assert sample(samples, "agentstats_broker_up") == 1
    assert [
        sample(samples, "agentstats_broker_answering_node", node=management_node(n)) for n in NODES
    ] == [0, 1, 0]
    assert [
        sample(samples, "agentstats_broker_node_up", node=management_node(n)) for n in NODES
    ] == [0, 1, 1]

    # and the observer lost node 1, reconnected to another node and reconciled there
    wait_until(
        lambda: ObserverStatus.objects.filter(
            last_reconciled_at__gt=stopped_at, is_broker_available=True
        ).exists(),
        timeout=WAIT_SECONDS,
        message="the observer reconciled after losing node 1",
    )
    # and it still receives events: the agent's disconnect from node 3 is recorded
    client.disconnect()
    wait_until(
        lambda: events_of(agent)[-1:] == [("disconnected", "closed")],
        timeout=WAIT_SECONDS,
        message="the observer recorded the disconnect after failing over",
    )
    assert owner_pod(agent) == ""
