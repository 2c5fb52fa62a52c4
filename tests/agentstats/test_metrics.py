"""GET /metrics: who may scrape it, what it exposes (bounded labels only), what a scrape
costs, and how it reports a broker outage (200 with agentstats_broker_up 0). The
management API is mocked by `responses`, except in the one test against the real
RabbitMQ."""

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
import stomp
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from marketplace.metrics.registry import BROKER_SNAPSHOT_ERRORS, BROKER_SNAPSHOT_SECONDS
from marketplace.names import AgentServiceState
from marketplace.registration.services import create_subscription_queue, register_event_subscription
from rmq.client import ManagementClient
from tests.broker_mocks import (
    SNAPSHOT_CALLS,
    broker_queue_of,
    mock_broker_snapshot,
    mock_queue_listings,
)
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
    UserFactory,
)

URL = "/metrics"
MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
CONNECTIONS_URL = f"{MANAGEMENT}/api/connections"
QUEUES_URL = f"{MANAGEMENT}/api/queues"
TOKEN = "mt-7Hq2-never-echo-this"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
ERRORS_TOTAL = "agentstats_broker_snapshot_errors_total"
SNAPSHOTS_COUNT = "agentstats_broker_snapshot_seconds_count"
# SQL queries of one scrape: agents with offering and creator, their services, their
# subscriptions with owner, the subscriptions' queues with their offering, their event
# consumers with owner.
SCRAPE_QUERIES = 5

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def accumulated(name: str) -> float:
    """The current value of a sample of the snapshot histogram or error counter."""
    registry = CollectorRegistry()
    registry.register(BROKER_SNAPSHOT_SECONDS)
    registry.register(BROKER_SNAPSHOT_ERRORS)
    value = registry.get_sample_value(name)
    assert value is not None
    return value


def _broker_connection(subscription: Any, *, index: int) -> dict[str, Any]:
    return {
        "name": f"10.0.0.{index}:41000 -> 127.0.0.1:15674",
        "user": subscription.uuid.hex,
        "vhost": subscription.user.uuid.hex,
        "peer_host": f"10.0.0.{index}",
        "connected_at": int(datetime(2026, 11, 24, 6, 44, tzinfo=UTC).timestamp() * 1000),
        "state": "running",
        "recv_oct": 120,
        "send_oct": 340,
        "protocol": "Web STOMP 1.2",
        "node": "rabbit@vm",
    }


@pytest.fixture
def fleet(db) -> dict[str, Any]:
    """Offering HPC: alpha (ACTIVE, ERROR; connected; queues of 5 and 1 messages, 2
    consumers) and beta (IDLE; disconnected; 2 messages, no consumer). Offering Storage:
    gamma (ACTIVE; connected; empty queue, 1 consumer). A second offering also named HPC,
    of another customer: delta (no services; disconnected; 7 messages)."""
    hpc = OfferingFactory(name="HPC")
    storage = OfferingFactory(name="Storage")
    other_hpc = OfferingFactory(name="HPC", customer=CustomerFactory())
    plan: list[tuple[str, Any, list[str], bool, list[tuple[int, int]]]] = [
        (
            "alpha",
            hpc,
            [AgentServiceState.ACTIVE, AgentServiceState.ERROR],
            True,
            [(5, 1), (1, 1)],
        ),
        ("beta", hpc, [AgentServiceState.IDLE], False, [(2, 0)]),
        ("gamma", storage, [AgentServiceState.ACTIVE], True, [(0, 1)]),
        ("delta", other_hpc, [], False, [(7, 0)]),
    ]
    connections: list[dict[str, Any]] = []
    queues: list[dict[str, Any]] = []
    for name, offering, states, is_connected, depths in plan:
        agent = AgentIdentityFactory(offering=offering, name=name)
        for state in states:
            AgentServiceFactory(identity=agent, state=state)
        for object_type, (messages, consumers) in zip(("order", "resource"), depths, strict=False):
            queue = EventSubscriptionQueueFactory(
                event_subscription=EventSubscriptionFactory(
                    agent_identity=agent, observable_objects=[{"object_type": object_type}]
                ),
                object_type=object_type,
            )
            queues.append(broker_queue_of(queue, messages=messages, consumers=consumers))
            if is_connected:
                connections.append(
                    _broker_connection(queue.event_subscription, index=len(connections) + 1)
                )
    return {
        "hpc": hpc,
        "storage": storage,
        "other_hpc": other_hpc,
        "connections": connections,
        "queues": queues,
    }


@pytest.fixture
def answering_broker(fleet, broker):
    mock_broker_snapshot(
        broker, base=MANAGEMENT, connections=fleet["connections"], queues=fleet["queues"]
    )
    return broker


@pytest.fixture
def scraper(client, settings):
    """A scraper on an allow-listed network."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]

    def scrape(**extra: str) -> Any:
        return client.get(URL, REMOTE_ADDR="192.0.2.10", **extra)

    return scrape


# --- who may scrape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "networks", "authorization", "remote_addr", "expected_status"),
    [
        pytest.param(TOKEN, [], f"Bearer {TOKEN}", "203.0.113.9", 200, id="token"),
        pytest.param(TOKEN, [], f"bearer {TOKEN}", "203.0.113.9", 200, id="token-any-case"),
        pytest.param(TOKEN, [], "Bearer wrong", "203.0.113.9", 403, id="wrong-token"),
        pytest.param(TOKEN, [], f"Bearer {TOKEN}x", "203.0.113.9", 403, id="token-prefix"),
        pytest.param(TOKEN, [], f"Token {TOKEN}", "203.0.113.9", 403, id="wrong-scheme"),
        pytest.param(TOKEN, [], None, "203.0.113.9", 403, id="no-header"),
        pytest.param("", [], "Bearer ", "203.0.113.9", 403, id="no-token-configured"),
        pytest.param("", ["10.0.0.0/8"], None, "10.1.2.3", 200, id="allowed-network"),
        pytest.param("", ["10.0.0.0/8"], None, "192.168.1.1", 403, id="other-network"),
        pytest.param("", ["10.0.0.0/8"], None, "::ffff:10.1.2.3", 200, id="ipv4-mapped"),
        pytest.param("", ["2001:db8::/32"], None, "2001:db8::7", 200, id="ipv6-network"),
        pytest.param("", ["2001:db8::/32"], None, "2001:db9::7", 403, id="other-ipv6"),
        pytest.param("", ["10.0.0.0/8"], None, "", 403, id="no-address"),
        pytest.param(TOKEN, ["10.0.0.0/8"], "Bearer wrong", "10.1.2.3", 200, id="network-wins"),
        pytest.param("", [], None, "127.0.0.1", 403, id="nothing-configured"),
    ],
)
def test_metrics_are_served_only_with_the_token_or_from_an_allowed_network(
    token, networks, authorization, remote_addr, expected_status, client, settings, fleet, broker
):
    # given
    settings.METRICS_TOKEN = token
    settings.METRICS_ALLOWED_NETWORKS = networks
    mock_broker_snapshot(
        broker, base=MANAGEMENT, connections=fleet["connections"], queues=fleet["queues"]
    )
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    # when
    response = client.get(URL, REMOTE_ADDR=remote_addr, **headers)

    # then
    assert response.status_code == expected_status
    if expected_status == 200:
        assert response["Content-Type"] == PROMETHEUS_TEXT
        assert len(broker.calls) == SNAPSHOT_CALLS
    else:
        assert response.json() == {
            "detail": "Metrics need the metrics token or a client on an allowed network.",
            "code": "permission_denied",
        }
        assert len(broker.calls) == 0


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", "Bearer wrong"])
def test_metrics_token_never_appears_in_a_response(authorization, client, settings, fleet, broker):
    # given
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    mock_broker_snapshot(
        broker, base=MANAGEMENT, connections=fleet["connections"], queues=fleet["queues"]
    )

    # when
    response = client.get(URL, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=authorization)

    # then
    assert response.status_code in (200, 403)
    assert TOKEN not in response.content.decode()
    assert all(TOKEN not in value for _, value in response.items())


def test_metrics_answer_only_reads(client, settings):
    # given
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    # when
    response = client.post(URL)

    # then
    assert response.status_code == 405


def test_metrics_are_never_cached(scraper, answering_broker):
    # when
    response = scraper()

    # then
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


# --- what they expose -------------------------------------------------------------------------


def test_metrics_count_agents_services_and_queues_per_offering(scraper, answering_broker, fleet):
    # given
    errors_before = accumulated(ERRORS_TOTAL)
    snapshots_before = accumulated(SNAPSHOTS_COUNT)

    # when
    response = scraper()

    # then
    assert response.status_code == 200
    samples = parse_samples(response.content.decode())
    assert sample(samples, "agentstats_broker_up") == 1
    assert sample(samples, "agentstats_agents", status="connected") == 2
    assert sample(samples, "agentstats_agents", status="disconnected") == 2
    assert sample(samples, "agentstats_services", state="ACTIVE") == 2
    assert sample(samples, "agentstats_services", state="IDLE") == 1
    assert sample(samples, "agentstats_services", state="ERROR") == 1
    per_offering = {
        (dict(labels)["offering"], dict(labels)["offering_uuid"], name): value
        for (name, labels), value in samples.items()
        if name in {"agentstats_queued_messages", "agentstats_queue_consumers"}
    }
    hpc, storage, other_hpc = (str(fleet[key].uuid) for key in ("hpc", "storage", "other_hpc"))
    assert per_offering == {
        ("HPC", hpc, "agentstats_queued_messages"): 8,
        ("HPC", hpc, "agentstats_queue_consumers"): 2,
        ("HPC", other_hpc, "agentstats_queued_messages"): 7,
        ("HPC", other_hpc, "agentstats_queue_consumers"): 0,
        ("Storage", storage, "agentstats_queued_messages"): 0,
        ("Storage", storage, "agentstats_queue_consumers"): 1,
    }
    assert sample(samples, ERRORS_TOTAL) == errors_before
    assert sample(samples, SNAPSHOTS_COUNT) == snapshots_before + 1
    assert accumulated(SNAPSHOTS_COUNT) == snapshots_before + 1


def test_metrics_labels_are_bounded_to_states_and_offerings(scraper, answering_broker, fleet):
    # when
    response = scraper()

    # then: no label names an agent, a subscription, a queue or a connection
    families = {
        family.name: {key for s in family.samples for key in s.labels} - {"le"}
        for family in text_string_to_metric_families(response.content.decode())
    }
    assert families == {
        "agentstats_broker_up": set(),
        "agentstats_agents": {"status"},
        "agentstats_services": {"state"},
        "agentstats_queued_messages": {"offering_uuid", "offering"},
        "agentstats_queue_consumers": {"offering_uuid", "offering"},
        "agentstats_broker_snapshot_seconds": set(),
        "agentstats_broker_snapshot_errors": set(),
        # The text format exposes the histogram's and counter's creation times apart.
        "agentstats_broker_snapshot_seconds_created": set(),
        "agentstats_broker_snapshot_errors_created": set(),
    }
    body = response.content.decode()
    for item in fleet["connections"] + fleet["queues"]:
        assert item["name"] not in body
        assert item["vhost"] not in body
    for name in ("alpha", "beta", "gamma", "delta"):
        assert name not in body


def test_metrics_of_an_empty_fleet_are_zero(scraper, broker, db):
    # given
    mock_broker_snapshot(broker, base=MANAGEMENT, connections=[], queues=[])

    # when
    response = scraper()

    # then
    samples = parse_samples(response.content.decode())
    assert sample(samples, "agentstats_broker_up") == 1
    assert sample(samples, "agentstats_agents", status="connected") == 0
    assert sample(samples, "agentstats_agents", status="disconnected") == 0
    assert [
        sample(samples, "agentstats_services", state=s) for s in ("ACTIVE", "IDLE", "ERROR")
    ] == [
        0,
        0,
        0,
    ]
    assert not [name for name, _ in samples if name == "agentstats_queued_messages"]


def test_metrics_speak_openmetrics_when_the_scraper_prefers_it(scraper, answering_broker):
    # when
    response = scraper(HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.decode().endswith("# EOF\n")


# --- what a scrape costs ----------------------------------------------------------------------


def _add_agents(offering: Any, count: int) -> None:
    for _ in range(count):
        agent = AgentIdentityFactory(offering=offering)
        AgentServiceFactory(identity=agent)
        EventSubscriptionQueueFactory(
            event_subscription=EventSubscriptionFactory(agent_identity=agent)
        )


def _scrape_counting(scrape: Any, broker: responses.RequestsMock) -> tuple[int, int, int]:
    broker.reset()
    mock_broker_snapshot(broker, base=MANAGEMENT, connections=[], queues=[])
    with CaptureQueriesContext(connection) as queries:
        response = scrape()
    return response.status_code, len(queries), len(broker.calls)


def test_each_scrape_costs_the_same_queries_and_broker_calls_for_1_and_30_agents(
    scraper, broker, offering
):
    # given
    _add_agents(offering, 1)

    # when
    one = _scrape_counting(scraper, broker)
    _add_agents(offering, 29)
    thirty = _scrape_counting(scraper, broker)

    # then
    assert one == thirty == (200, SCRAPE_QUERIES, SNAPSHOT_CALLS)


# --- broker outage ----------------------------------------------------------------------------

BROKER_FAILURES: list[Any] = [
    pytest.param({"body": requests.ConnectionError("Connection refused")}, id="refused"),
    pytest.param({"body": requests.ReadTimeout("Read timed out.")}, id="timeout"),
    pytest.param({"status": 401, "json": {"error": "not_authorized"}}, id="http-401"),
    pytest.param({"status": 502, "body": "bad gateway"}, id="http-502"),
    pytest.param({"json": {"items": []}}, id="unusable-body"),
]


@pytest.mark.parametrize("failure", BROKER_FAILURES)
def test_metrics_answer_200_with_broker_down_and_count_the_failed_snapshot(
    failure, scraper, fleet, broker, settings
):
    # given
    settings.RABBITMQ_GET_RETRIES = 0
    broker.add(responses.GET, CONNECTIONS_URL, **failure)
    mock_queue_listings(broker, base=MANAGEMENT, queues=fleet["queues"])
    errors_before = accumulated(ERRORS_TOTAL)
    snapshots_before = accumulated(SNAPSHOTS_COUNT)

    # when
    response = scraper()

    # then: the broker is down, the failure counted and timed, the services still reported,
    # and nothing claims the agents are disconnected
    assert response.status_code == 200
    samples = parse_samples(response.content.decode())
    assert sample(samples, "agentstats_broker_up") == 0
    assert sample(samples, ERRORS_TOTAL) == errors_before + 1
    assert sample(samples, SNAPSHOTS_COUNT) == snapshots_before + 1
    assert sample(samples, "agentstats_services", state="ACTIVE") == 2
    assert sample(samples, "agentstats_services", state="IDLE") == 1
    assert sample(samples, "agentstats_services", state="ERROR") == 1
    names = {name for name, _ in samples}
    assert not names & {
        "agentstats_agents",
        "agentstats_queued_messages",
        "agentstats_queue_consumers",
    }


def test_metrics_ask_the_broker_on_every_scrape_and_recover_with_it(scraper, fleet, broker):
    # given: a broker that fails once, then answers
    broker.add(responses.GET, CONNECTIONS_URL, status=503, body="starting")
    mock_broker_snapshot(
        broker, base=MANAGEMENT, connections=fleet["connections"], queues=fleet["queues"]
    )
    errors_before = accumulated(ERRORS_TOTAL)

    # when
    down = parse_samples(scraper().content.decode())
    up = parse_samples(scraper().content.decode())

    # then
    assert sample(down, "agentstats_broker_up") == 0
    assert sample(up, "agentstats_broker_up") == 1
    assert sample(up, "agentstats_agents", status="connected") == 2
    assert sample(up, ERRORS_TOTAL) == errors_before + 1
    assert [call.request.url.split("?")[0] for call in broker.calls].count(CONNECTIONS_URL) == 2


# --- the real broker --------------------------------------------------------------------------

WAIT_SECONDS = 25


@pytest.mark.broker
def test_metrics_follow_a_real_web_stomp_consumer(real_broker, client, settings):
    # given: two agents provisioned on the real broker; the first consumes over Web STOMP
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    owner = UserFactory(username="metrics-owner")
    offering = OfferingFactory(name="Metrics HPC", customer=CustomerFactory(owners=[owner]))
    broker = ManagementClient.from_settings()
    subscriptions = []
    for name in ("metrics-ws", "metrics-idle"):
        identity = AgentIdentityFactory(offering=offering, created_by=owner, name=name)
        AgentServiceFactory(identity=identity, state=AgentServiceState.ACTIVE)
        subscription, _ = register_event_subscription(
            identity,
            owner=owner,
            object_type="order",
            description="",
            source_ip="127.0.0.1",
            broker=broker,
        )
        queue, _ = create_subscription_queue(
            subscription, offering=offering, object_type="order", broker=broker
        )
        subscriptions.append((subscription, queue))
    (ws_subscription, ws_queue), _ = subscriptions
    ws = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=owner.uuid.hex
    )
    ws.connect(
        login=ws_subscription.uuid.hex, passcode=Token.objects.get(user=owner).key, wait=True
    )
    ws.subscribe(destination=f"/amq/queue/{ws_queue.queue_name}", id="q", ack="client")

    try:
        # when scraped until the broker lists the connection and the consumer
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            response = client.get(URL, REMOTE_ADDR="127.0.0.1")
            samples = parse_samples(response.content.decode())
            labels = {"offering_uuid": str(offering.uuid), "offering": "Metrics HPC"}
            is_seen = (
                sample(samples, "agentstats_agents", status="connected") == 1
                and sample(samples, "agentstats_queue_consumers", **labels) == 1
            )
            if is_seen or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        ws.disconnect()

    # then
    assert response.status_code == 200
    assert sample(samples, "agentstats_broker_up") == 1
    assert sample(samples, "agentstats_agents", status="connected") == 1
    assert sample(samples, "agentstats_agents", status="disconnected") == 1
    assert sample(samples, "agentstats_services", state="ACTIVE") == 2
    assert sample(samples, "agentstats_queue_consumers", **labels) == 1
    assert sample(samples, "agentstats_queued_messages", **labels) == 0
