"""Reading /metrics: the Prometheus samples of a scrape, and the process's own counters."""

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from marketplace.metrics.registry import BROKER_SNAPSHOT_ERRORS, BROKER_SNAPSHOT_SECONDS

URL = "/metrics"
TOKEN = "mt-7Hq2-never-echo-this"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
ERRORS_TOTAL = "agentstats_broker_snapshot_errors_total"
SNAPSHOTS_COUNT = "agentstats_broker_snapshot_seconds_count"
# SQL queries of one scrape: agents with offering and creator, their services, their
# subscriptions with owner, the subscriptions' queues with their offering, their event
# consumers with owner; the offerings' customers; the observer's beat; and the background
# jobs' last runs.
SCRAPE_QUERIES = 8

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
