"""The real `waldur-site-agent` against our live server, the real PostgreSQL and RabbitMQ.

1.0.7 (the unified consumer queue) and 1.0.0 (the legacy subscription per object type)
run `event_process` as subprocesses, exactly as a site runs them; nothing on the path
between them and us is mocked. `tests/kit/site_agents.py` says how they are installed and run.
"""

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from rest_framework.authtoken.models import Token
from waldur_api_client.models import AgentConnectionInfo, QueueKindEnum

from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    EventConsumer,
    EventSubscription,
    EventSubscriptionQueue,
)
from tests.factories import CustomerFactory, OfferingFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.paths import ROOT
from tests.kit.real_broker import publish
from tests.kit.site_agents import (
    PLUGIN_NAME,
    PLUGIN_VERSION,
    AgentLauncher,
    AgentProcess,
    consumer_tags,
    wait_for,
)

STATS_SNAPSHOT = ROOT / "docs" / "real-agents-stats.json"
ORDER_PROCESSOR = "OfferingOrderProcessor"


@pytest.fixture
def launcher(transactional_db, real_postgres, real_broker, tmp_path) -> Iterator[AgentLauncher]:
    """Starts agents; afterwards kills them and prints their output (before `real_broker`
    removes their broker users and vhosts)."""
    agents = AgentLauncher(workdir=tmp_path)
    try:
        yield agents
    finally:
        agents.close()


@pytest.fixture
def site(transactional_db) -> dict[str, Any]:
    """A customer whose owner runs the agents with its API token, and a support user."""
    owner: Any = UserFactory(username="site-admin")
    customer = CustomerFactory(name="HPC site", owners=[owner])
    support: Any = UserFactory(username="helpdesk", is_support=True)
    return {
        "owner": owner,
        "customer": customer,
        "token": Token.objects.get(user=owner).key,
        "support_token": Token.objects.get(user=support).key,
    }


def api_url(live_server) -> str:
    # The agent's SDK strips `/api` from the URL as a set of characters, not a suffix:
    # a host ending in a, p or i would be mangled; 127.0.0.1 is safe.
    return f"http://127.0.0.1:{urlsplit(live_server.url).port}/api/"


def start_agent(
    launcher: AgentLauncher, live_server, site: dict[str, Any], version: str, offering
) -> AgentProcess:
    return launcher.start(
        version, api_url=api_url(live_server), token=site["token"], offering_uuid=str(offering.uuid)
    )


def processor_names(identity: AgentIdentity, service_name: str) -> list[str]:
    return list(
        AgentProcessor.objects.filter(
            service__identity=identity, service__name=service_name
        ).values_list("name", flat=True)
    )


def fetch_stats(live_server, token: str) -> dict[str, Any]:
    response = requests.get(
        f"{live_server.url}{STATS_URL}", headers={"Authorization": f"Token {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def entry_of(body: dict[str, Any], identity: AgentIdentity) -> dict[str, Any]:
    return next(agent for agent in body["agents"] if agent["uuid"] == str(identity.uuid))


def wait_for_stats(
    live_server,
    site: dict[str, Any],
    what: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    agents: list[AgentProcess],
) -> dict[str, Any]:
    """Poll the stats as support until `until(body)` holds (the broker lags ~5 s)."""

    def body_if_ready() -> dict[str, Any] | None:
        body = fetch_stats(live_server, site["support_token"])
        return body if until(body) else None

    return wait_for(what, body_if_ready, agents=agents)


def wait_until_consuming(agent: AgentProcess, offering) -> EventConsumer:
    """Wait for 1.0.7 to register its queue and for RabbitMQ to list its STOMP consumer."""
    consumer = wait_for(
        f"{agent.version} register_queue",
        lambda: (
            EventConsumer.objects.select_related("user", "identity")
            .filter(identity__name=f"agent-{offering.uuid}")
            .first()
        ),
        agents=[agent],
        gives_up_when="Unable to register unified event queue",
    )
    wait_for(
        f"{agent.version} consuming {consumer.queue_name}",
        lambda: consumer_tags(vhost=consumer.vhost, queue_name=consumer.queue_name),
        agents=[agent],
    )
    return consumer


def wait_until_subscribed(agent: AgentProcess, offering) -> EventSubscriptionQueue:
    """Wait for 1.0.0's legacy order queue and for RabbitMQ to list its STOMP consumer."""
    queue = wait_for(
        f"{agent.version} create_queue",
        lambda: (
            EventSubscriptionQueue.objects.select_related("event_subscription__user")
            .filter(event_subscription__agent_identity__name=f"agent-{offering.uuid}")
            .first()
        ),
        agents=[agent],
    )
    wait_for(
        f"{agent.version} consuming {queue.queue_name}",
        lambda: consumer_tags(
            vhost=queue.event_subscription.user.uuid.hex, queue_name=queue.queue_name
        ),
        agents=[agent],
    )
    return queue


def send_order_event(*, vhost: str, queue_name: str) -> str:
    order_uuid = str(uuid.uuid4())
    message = {"object_type": "order", "order_uuid": order_uuid, "order_state": "executing"}
    publish(vhost=vhost, queue_name=queue_name, payload=json.dumps(message))
    return order_uuid


def wait_until_order_handled(agent: AgentProcess, identity: AgentIdentity, order_uuid: str) -> None:
    """The handler ran: it registered its service and processor, then asked for the order."""
    wait_for(
        f"{agent.version} handler's {ORDER_PROCESSOR}",
        lambda: ORDER_PROCESSOR in processor_names(identity, "event_process-order"),
        agents=[agent],
    )
    # Orders are not ours to serve: the agent's SDK gets our JSON 404 and the handler gives up.
    failure = f"Failed to get order {order_uuid} info: Unexpected status code: 404"
    logged = wait_for(
        f"{agent.version} asking for order {order_uuid}",
        lambda: [event for event in agent.logged_events() if event.startswith(failure)],
        agents=[agent],
    )
    answer = logged[0].split("Response content:", 1)[1].split("URL:", 1)[0]
    assert json.loads(answer) == {"detail": "Not found.", "code": "not_found"}


def test_agent_107_registers_consumes_its_unified_queue_and_reports_in_stats(
    live_server, launcher, site
):
    # given an offering of the site and the owner's API token in the agent's config
    offering = OfferingFactory(customer=site["customer"], name="Cluster")

    # when waldur-site-agent 1.0.7 starts event processing
    agent = start_agent(launcher, live_server, site, "1.0.7", offering)

    # then it registers its queue and its own STOMP-over-WebSocket consumer reads it
    consumer = wait_until_consuming(agent, offering)
    assert consumer.user == site["owner"]
    assert consumer.object_types == ["order", "resource_api_key_rotation"]
    assert consumer_tags(vhost=consumer.vhost, queue_name=consumer.queue_name) == [
        f"T_{consumer.queue_name}"
    ]
    # and before that it registered its identity, its service and the order processor,
    # which needs the platform reads (users/me, the provider offering, its service provider)
    identity = consumer.identity
    identity.refresh_from_db()
    assert identity.offering == offering
    assert identity.version == "1.0.7"
    assert {"package": PLUGIN_NAME, "version": PLUGIN_VERSION} in identity.dependencies
    assert {"package": "waldur-api-client", "version": "8.1.2"} in identity.dependencies
    assert identity.created_by == site["owner"]
    processor = AgentProcessor.objects.get(
        service__identity=identity, service__name="initial-offering-process"
    )
    assert processor.name == ORDER_PROCESSOR
    assert processor.backend_type == "waldur_site_agent.testing.mock_backend.MockBackend"
    assert processor.backend_version == PLUGIN_VERSION

    # when an order event is published to its queue
    order_uuid = send_order_event(vhost=consumer.vhost, queue_name=consumer.queue_name)

    # then it reaches the agent's order handler
    wait_until_order_handled(agent, identity, order_uuid)

    # and support sees the agent connected, with one consumer on its consumer queue
    body = wait_for_stats(
        live_server,
        site,
        "1.0.7 connected in the stats",
        lambda body: (
            entry_of(body, identity)["connected"]
            and [q["consumers"] for q in entry_of(body, identity)["queues"]] == [1]
        ),
        agents=[agent],
    )
    entry = entry_of(body, identity)
    assert entry["event_consumer_uuid"] == str(consumer.uuid)
    assert (entry["auth_kind"], entry["authorized_via"]) == ("token", "customer_owner")
    assert entry["event_subscriptions"] == []
    assert [(q["name"], q["kind"], q["messages"]) for q in entry["queues"]] == [
        (consumer.queue_name, "consumer", 0)
    ]
    assert {s["name"] for s in entry["services"]} == {
        "initial-offering-process",
        "event_process-order",
    }
    # and the entry parses with the 8.1.3 SDK's model, every key typed
    parsed = AgentConnectionInfo.from_dict(entry)
    assert parsed.event_consumer_uuid == consumer.uuid
    assert parsed.user_uuid == site["owner"].uuid
    assert [queue.kind for queue in parsed.queues] == [QueueKindEnum.CONSUMER]

    # when the site stops the agent
    exit_code = agent.terminate()

    # then it exits cleanly, its consumer is gone, and support sees it disconnected
    assert exit_code == 0
    wait_for(
        "the broker dropping 1.0.7's consumer",
        lambda: not consumer_tags(vhost=consumer.vhost, queue_name=consumer.queue_name),
        agents=[],
    )
    body = wait_for_stats(
        live_server,
        site,
        "1.0.7 disconnected in the stats",
        lambda body: entry_of(body, identity)["connected"] is False,
        agents=[],
    )
    assert [q["consumers"] for q in entry_of(body, identity)["queues"]] == [0]


def test_agents_100_and_107_connect_side_by_side_and_both_show_in_one_stats_body(
    live_server, launcher, site
):
    # given two offerings of one site: one served by 1.0.7, one still by 1.0.0
    unified_offering = OfferingFactory(customer=site["customer"], name="Cluster")
    legacy_offering = OfferingFactory(customer=site["customer"], name="Storage")

    # when both agents start event processing at once
    unified = start_agent(launcher, live_server, site, "1.0.7", unified_offering)
    legacy = start_agent(launcher, live_server, site, "1.0.0", legacy_offering)

    # then 1.0.7 consumes its unified queue and 1.0.0 its legacy subscription queue
    consumer = wait_until_consuming(unified, unified_offering)
    legacy_queue = wait_until_subscribed(legacy, legacy_offering)
    subscription = legacy_queue.event_subscription
    assert EventSubscription.objects.filter(agent_identity=consumer.identity).count() == 0
    assert legacy_queue.object_type == "order"
    legacy_identity = subscription.agent_identity
    assert legacy_identity is not None
    assert legacy_identity.version == "1.0.0"
    assert not EventConsumer.objects.filter(identity=legacy_identity).exists()

    # when an order event is published to the legacy queue
    order_uuid = send_order_event(
        vhost=subscription.user.uuid.hex, queue_name=legacy_queue.queue_name
    )

    # then it reaches 1.0.0's order handler
    wait_until_order_handled(legacy, legacy_identity, order_uuid)

    # and one stats body shows both agents connected, each through its own kind of queue
    def both_connected(body: dict[str, Any]) -> bool:
        entries = [entry_of(body, consumer.identity), entry_of(body, legacy_identity)]
        return all(
            entry["connected"] and [q["consumers"] for q in entry["queues"]] == [1]
            for entry in entries
        )

    body = wait_for_stats(
        live_server, site, "both connected in one body", both_connected, agents=[unified, legacy]
    )
    unified_entry = entry_of(body, consumer.identity)
    legacy_entry = entry_of(body, legacy_identity)
    assert unified_entry["version"] == "1.0.7"
    assert unified_entry["event_consumer_uuid"] == str(consumer.uuid)
    assert [q["kind"] for q in unified_entry["queues"]] == ["consumer"]
    assert legacy_entry["version"] == "1.0.0"
    assert legacy_entry["event_consumer_uuid"] is None
    assert [q["kind"] for q in legacy_entry["queues"]] == ["legacy"]
    [legacy_subscription] = legacy_entry["event_subscriptions"]
    assert legacy_subscription["uuid"] == str(subscription.uuid)
    assert legacy_subscription["rmq_connection"]["connected"] is True
    assert legacy_subscription["rmq_connection"]["source_ip"] == "127.0.0.1"
    assert body["summary"]["total_agents"] == 2
    assert body["summary"]["connected_agents"] == 2
    if os.environ.get("SAVE_REAL_AGENT_STATS") == "1":
        STATS_SNAPSHOT.write_text(json.dumps(body, indent=2) + "\n")

    # when the site stops both
    # then both exit cleanly after disconnecting
    assert unified.terminate() == 0
    assert legacy.terminate() == 0
    body = wait_for_stats(
        live_server,
        site,
        "both disconnected",
        lambda body: body["summary"]["connected_agents"] == 0,
        agents=[],
    )
    assert body["summary"]["disconnected_agents"] == 2
