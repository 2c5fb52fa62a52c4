"""The per-agent gauges and the observer's beat that the shipped alert rules page on."""

from datetime import UTC, datetime

import requests
import responses

from marketplace.models import ObserverStatus
from tests.factories import (
    AgentIdentityFactory,
    EventConsumerFactory,
    EventSubscriptionQueueFactory,
)
from tests.kit.broker import (
    CONNECTIONS_URL,
    consumer_login,
    consumer_queue,
    mock_broker_snapshot,
    mock_queue_listings,
)
from tests.kit.fleet import Fleet
from tests.kit.metrics import parse_samples, sample

BEAT = "agentstats_observer_last_beat_timestamp_seconds"


def _agent_labels(agent_name: str, offering) -> dict[str, str]:
    identity = offering.agent_identities.get(name=agent_name)
    return {
        "agent_uuid": str(identity.uuid),
        "agent": agent_name,
        "offering_uuid": str(offering.uuid),
        "offering": offering.name,
        "customer_uuid": str(offering.customer.uuid),
        "customer": offering.customer.name,
    }


def test_each_event_consuming_agent_has_its_connected_flag_and_unconsumed_messages(
    scraper, answering_broker, fleet
):
    # when
    samples = parse_samples(scraper().content.decode())

    # then: alpha's and gamma's queues have consumers; beta's 2 and delta's 7 messages wait
    # in queues nobody consumes
    expected = {
        ("alpha", "hpc"): (1, 0),
        ("beta", "hpc"): (0, 2),
        ("gamma", "storage"): (1, 0),
        ("delta", "other_hpc"): (0, 7),
    }
    for (name, offering_key), (connected, unconsumed) in expected.items():
        labels = _agent_labels(name, fleet[offering_key])
        assert sample(samples, "agentstats_agent_connected", **labels) == connected, name
        assert sample(samples, "agentstats_agent_unconsumed_messages", **labels) == unconsumed
    assert [name for name, _ in samples].count("agentstats_agent_connected") == 4


def test_an_agent_that_only_polls_the_api_has_no_connection_series(scraper, broker, offering):
    # given: one agent with a queue, one with neither subscription nor event consumer
    fleet = Fleet()
    fleet.add_queue(fleet.add_agent("consuming", offering=offering))
    fleet.add_agent("polling", offering=offering)
    fleet.mock(broker)

    # when
    samples = parse_samples(scraper().content.decode())

    # then
    agents = [
        dict(labels)["agent"] for name, labels in samples if name.startswith("agentstats_agent_")
    ]
    assert sorted(agents) == ["consuming", "consuming"]
    assert sample(samples, "agentstats_agents", status="disconnected") == 2


def test_unified_consumer_agents_follow_the_stats_rule_and_count_unconsumed_queues(
    scraper, broker, offering
):
    # given: `logged-in` is logged in (3 messages, no consumer), `listening` consumes its
    # consumer queue but not its legacy queue (2 messages), `silent`'s queue is missing
    consumers = {
        name: EventConsumerFactory(identity=AgentIdentityFactory(offering=offering, name=name))
        for name in ("logged-in", "listening", "silent")
    }
    legacy = EventSubscriptionQueueFactory(
        event_subscription__agent_identity=consumers["listening"].identity
    )
    mock_broker_snapshot(
        broker,
        connections=[consumer_login(consumers["logged-in"], peer_host="10.7.7.7")],
        queues=[
            consumer_queue(consumers["logged-in"], messages=3),
            consumer_queue(consumers["listening"], consumers=1),
            {"name": legacy.queue_name, "vhost": legacy.vhost, "messages": 2, "consumers": 0},
        ],
    )

    # when
    samples = parse_samples(scraper().content.decode())

    # then
    for name, (connected, unconsumed) in {
        "logged-in": (1, 3),
        "listening": (1, 2),
        "silent": (0, 0),
    }.items():
        labels = _agent_labels(name, offering)
        assert sample(samples, "agentstats_agent_connected", **labels) == connected, name
        assert sample(samples, "agentstats_agent_unconsumed_messages", **labels) == unconsumed


def test_the_observer_beat_is_zero_until_it_beats_then_its_unix_time(scraper, answering_broker, db):
    # given
    before = parse_samples(scraper().content.decode())
    beat_at = datetime(2026, 12, 2, 8, 0, 5, tzinfo=UTC)
    ObserverStatus.objects.create(name="default", last_beat_at=beat_at, is_broker_available=True)

    # when
    after = parse_samples(scraper().content.decode())

    # then
    assert sample(before, BEAT) == 0
    assert sample(after, BEAT) == beat_at.timestamp()


def test_a_broker_outage_leaves_the_agent_series_out_but_keeps_the_observer_beat(
    scraper, fleet, broker, settings
):
    # given
    settings.RABBITMQ_GET_RETRIES = 0
    broker.add(responses.GET, CONNECTIONS_URL, body=requests.ConnectionError("refused"))
    mock_queue_listings(broker, queues=fleet["queues"])
    beat_at = datetime(2026, 12, 2, 8, 0, 5, tzinfo=UTC)
    ObserverStatus.objects.create(name="default", last_beat_at=beat_at)

    # when
    samples = parse_samples(scraper().content.decode())

    # then: no agent is claimed disconnected while the broker cannot be asked
    assert sample(samples, "agentstats_broker_up") == 0
    assert sample(samples, BEAT) == beat_at.timestamp()
    names = {name for name, _ in samples}
    assert not names & {"agentstats_agent_connected", "agentstats_agent_unconsumed_messages"}
