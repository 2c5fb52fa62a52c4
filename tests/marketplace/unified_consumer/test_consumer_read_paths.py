"""The dashboard, `manage.py connection_stats` and /metrics show an agent's consumer queue
and count it connected by the stats' rule (they share its merge)."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import (
    AgentIdentityFactory,
    EventConsumerFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
)
from tests.kit.broker import (
    CONNECTED_AT_MS,
    consumer_login,
    consumer_queue,
    mock_broker_snapshot,
)

MANAGEMENT = settings.RABBITMQ_MANAGEMENT_URL.rstrip("/")
TABLE = "/admin/fleet/table/"
CONNECTED_AT = datetime.fromtimestamp(CONNECTED_AT_MS / 1000, tz=UTC)


@pytest.fixture
def fleet(db, broker):
    """On one offering: `logged-in` (a consumer whose user is logged in, queue of 3 messages
    and no consumer yet), `listening` (a consumer with one consumer on its queue and a
    legacy queue of 2 messages), `silent` (a consumer missing on the broker)."""
    offering = OfferingFactory(name="HPC")
    logged_in = EventConsumerFactory(
        identity=AgentIdentityFactory(offering=offering, name="logged-in")
    )
    listening = EventConsumerFactory(
        identity=AgentIdentityFactory(offering=offering, name="listening")
    )
    legacy = EventSubscriptionQueueFactory(event_subscription__agent_identity=listening.identity)
    silent = EventConsumerFactory(identity=AgentIdentityFactory(offering=offering, name="silent"))
    mock_broker_snapshot(
        broker,
        base=MANAGEMENT,
        connections=[consumer_login(logged_in, peer_host="10.7.7.7")],
        queues=[
            consumer_queue(logged_in, messages=3),
            consumer_queue(listening, consumers=1),
            {"name": legacy.queue_name, "vhost": legacy.vhost, "messages": 2, "consumers": 0},
        ],
    )
    return {"offering": offering, "logged_in": logged_in, "listening": listening, "silent": silent}


def test_dashboard_shows_the_consumer_queue_and_counts_agents_by_the_stats_rule(
    fleet, support_user
):
    # when support reads the table
    client = Client()
    client.force_login(support_user)
    response = client.get(TABLE)

    # then each agent is connected by the same rule, with its consumer queue first
    table = response.context["table"]
    rows = {row.name: row for row in table.rows}
    assert {name: row.is_connected for name, row in rows.items()} == {
        "listening": True,
        "logged-in": True,
        "silent": False,
    }
    assert [(q.label, q.messages, q.consumers) for q in rows["listening"].queues] == [
        ("consumer", 0, 1),
        ("order", 2, 0),
    ]
    assert rows["logged-in"].connected_since == CONNECTED_AT
    assert rows["logged-in"].source_ips == ("10.7.7.7",)
    assert rows["silent"].delivery_blocked_reason == "queue_not_provisioned"
    assert rows["silent"].queues[0].exists_on_broker is False
    page = response.content.decode()
    assert f'title="{fleet["logged_in"].queue_name}">consumer: 3 msg / 0 consumers' in page
    assert "delivery blocked: queue_not_provisioned" in page
    assert (table.summary.connected_agents, table.summary.total_queued_messages) == (2, 5)


def run_connection_stats(*argv: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("connection_stats", *argv, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_cli_counts_consumer_agents_by_the_stats_rule_and_shows_their_queue(fleet):
    # when the whole fleet is listed, then only the connected agents
    code, table = run_connection_stats()
    connected_code, _ = run_connection_stats("--connected", "true")

    # then the logged-in agent shows its login, each queue counts, and `silent` fails it
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:-1]}
    assert lines["logged-in"][2:5] == ["yes", "2026-11-24T06:44:28Z", "10.7.7.7"]
    assert lines["logged-in"][-1] == "3"
    assert lines["listening"][2] == "yes"
    assert lines["listening"][-1] == "2"
    assert lines["silent"][2] == "no"
    assert table.splitlines()[-1] == "3 agents: 2 connected, 1 disconnected; 5 queued messages"
    assert (code, connected_code) == (1, 0)


def test_cli_json_lists_the_consumer_queue(fleet):
    _, output = run_connection_stats("--json", "--name", "listening")

    (agent,) = json.loads(output)["agents"]
    assert agent["event_consumer_uuid"] == str(fleet["listening"].uuid)
    assert [queue["kind"] for queue in agent["queues"]] == ["consumer", "legacy"]


def test_metrics_count_consumer_agents_connected_and_their_queues(fleet, client, settings):
    # given an allow-listed scraper
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]

    # when it scrapes
    response = client.get("/metrics", REMOTE_ADDR="192.0.2.10")

    # then the agents and the offering's queues follow the stats' rule
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    labels = (("offering", "HPC"), ("offering_uuid", str(fleet["offering"].uuid)))
    assert samples[("agentstats_agents", (("status", "connected"),))] == 2
    assert samples[("agentstats_agents", (("status", "disconnected"),))] == 1
    assert samples[("agentstats_queued_messages", labels)] == 5
    assert samples[("agentstats_queue_consumers", labels)] == 1
