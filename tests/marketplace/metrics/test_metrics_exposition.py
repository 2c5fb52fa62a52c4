"""What /metrics exposes, with the management API mocked by `responses`: agents, services
and queues per offering, bounded labels only, in either exposition format."""

from prometheus_client.parser import text_string_to_metric_families

from tests.kit.broker import mock_broker_snapshot
from tests.kit.metrics import ERRORS_TOTAL, SNAPSHOTS_COUNT, accumulated, parse_samples, sample


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


def test_metrics_labels_are_bounded_to_states_offerings_and_agents(
    scraper, answering_broker, fleet
):
    # when
    response = scraper()

    # then: labels name states, offerings, customers and agents; never a subscription, a
    # queue, a vhost or a connection
    agent_labels = {"agent_uuid", "agent", "offering_uuid", "offering", "customer_uuid", "customer"}
    families = {
        family.name: {key for s in family.samples for key in s.labels} - {"le"}
        for family in text_string_to_metric_families(response.content.decode())
    }
    assert families == {
        "agentstats_broker_up": set(),
        # Bounded by the configured management nodes.
        "agentstats_broker_answering_node": {"node"},
        "agentstats_broker_node_up": {"node"},
        "agentstats_agents": {"status"},
        "agentstats_services": {"state"},
        "agentstats_queued_messages": {"offering_uuid", "offering"},
        "agentstats_queue_consumers": {"offering_uuid", "offering"},
        "agentstats_agent_connected": agent_labels,
        "agentstats_agent_unconsumed_messages": agent_labels,
        "agentstats_observer_last_beat_timestamp_seconds": set(),
        "agentstats_observer_lease_expires_timestamp_seconds": set(),
        "agentstats_observer_lease_acquired_timestamp_seconds": set(),
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


def test_metrics_of_an_empty_fleet_are_zero(scraper, broker, db):
    # given
    mock_broker_snapshot(broker, connections=[], queues=[])

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
