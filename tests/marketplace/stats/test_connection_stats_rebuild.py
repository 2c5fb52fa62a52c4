"""A new snapshot never sends every poller to render: the previous answer is served while
one build runs beside the requests; a warm request never loads the snapshot itself; the
shared bodies are one cache entry per filter set."""

import threading
import time
from datetime import datetime

import pytest
from django.core.cache import cache

from marketplace.stats import answers
from marketplace.stats.answers import ANSWER_BODY_KEY, BUILD_LOCK_KEY, join_answer_builds
from rmq import snapshot_cache
from rmq.snapshot_cache import join_refresh
from tests.factories import AgentIdentityFactory
from tests.kit.api import STATS_URL
from tests.kit.broker import mock_broker_snapshot

DEADLINE_SECONDS = 60
FILTERED = {"name": "agent"}


@pytest.fixture
def clock(snapshot_clock):
    return snapshot_clock


@pytest.fixture
def fleet(offering):
    return [AgentIdentityFactory(offering=offering, name=f"agent-{n}") for n in range(3)]


@pytest.fixture
def support_client(support_user, client_for):
    return client_for(support_user)


@pytest.fixture
def held_builds(monkeypatch):
    """Count answer builds; a build waits for `release` (set it to let builds finish)."""
    release = threading.Event()
    calls: list[datetime] = []
    build = answers.build_answer

    def held(filters, snapshot_):
        calls.append(snapshot_.taken_at)
        assert release.wait(DEADLINE_SECONDS)
        return build(filters, snapshot_)

    monkeypatch.setattr(answers, "build_answer", held)
    return release, calls


def _publish_newer_snapshot(support_client, fleet, clock) -> None:
    """A refresh started by one agent's view: it publishes a newer snapshot and builds no
    answer for the filtered pollers."""
    clock.advance(3)
    assert support_client.get(f"{STATS_URL}{fleet[0].uuid}/").status_code == 200
    assert join_refresh(DEADLINE_SECONDS)


def test_the_previous_answer_is_served_while_one_build_for_the_new_snapshot_runs(
    transactional_db, fleet, support_client, broker, clock, held_builds
):
    # given a filtered answer, then a newer snapshot without an answer for those filters
    release, calls = held_builds
    mock_broker_snapshot(broker)
    release.set()
    first = support_client.get(STATS_URL, FILTERED)
    release.clear()
    calls.clear()
    _publish_newer_snapshot(support_client, fleet, clock)

    # when five pollers ask while the build is held
    polled = [support_client.get(STATS_URL, FILTERED) for _ in range(5)]

    # then each was served the previous answer at once, and one build runs
    assert [response.status_code for response in polled] == [200] * 5
    assert {response.content for response in polled} == {first.content}
    assert {response["X-Snapshot-Taken-At"] for response in polled} == {
        first["X-Snapshot-Taken-At"]
    }
    assert len(calls) == 1
    release.set()
    assert join_answer_builds(DEADLINE_SECONDS)

    # and once it is built, pollers get the newer snapshot's answer, built by nobody else
    after = support_client.get(STATS_URL, FILTERED)
    assert after["X-Snapshot-Taken-At"] > first["X-Snapshot-Taken-At"]
    assert after["Server-Timing"].endswith('answer;desc="shared"')
    assert len(calls) == 1


def test_a_build_claimed_by_another_process_is_left_to_it(
    transactional_db, fleet, support_client, broker, clock, held_builds
):
    # given a filtered answer, a newer snapshot, and another process building its answer
    release, calls = held_builds
    release.set()
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL, FILTERED)
    calls.clear()
    _publish_newer_snapshot(support_client, fleet, clock)
    key = answers._answer_key(answers.AgentFilters(name="agent"))
    cache.set(BUILD_LOCK_KEY + key, "another-process", timeout=60)

    # when pollers ask
    polled = [support_client.get(STATS_URL, FILTERED) for _ in range(3)]
    assert join_answer_builds(DEADLINE_SECONDS)

    # then they are served the previous answer and this process builds nothing
    assert {response.content for response in polled} == {first.content}
    assert calls == []


def test_an_answer_older_than_the_max_age_is_never_served(
    transactional_db, fleet, support_client, broker, clock, settings, held_builds
):
    # given a filtered answer, then a newer snapshot once the answer is past the max age
    release, _ = held_builds
    release.set()
    settings.BROKER_SNAPSHOT_MAX_AGE = 5
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL, FILTERED)
    clock.advance(6)
    assert support_client.get(f"{STATS_URL}{fleet[0].uuid}/").status_code in (200, 503)
    assert join_refresh(DEADLINE_SECONDS)
    assert join_answer_builds(DEADLINE_SECONDS)

    # when a poller asks
    polled = support_client.get(STATS_URL, FILTERED)

    # then it is built from the newer snapshot, never the old answer
    assert polled.status_code == 200
    assert polled["X-Snapshot-Taken-At"] > first["X-Snapshot-Taken-At"]
    assert float(polled["X-Snapshot-Age"]) < settings.BROKER_SNAPSHOT_MAX_AGE


def test_a_warm_request_does_not_load_the_snapshot(fleet, support_client, broker, monkeypatch):
    # given a warm answer, and this process's memory of the snapshot dropped
    mock_broker_snapshot(broker)
    assert support_client.get(STATS_URL).status_code == 200
    snapshot_cache.forget_snapshot_in_memory()
    loads: list[object] = []
    load = snapshot_cache.load_snapshot

    def counted(head):
        loads.append(head)
        return load(head)

    monkeypatch.setattr(snapshot_cache, "load_snapshot", counted)

    # when pollers ask
    polled = [support_client.get(STATS_URL) for _ in range(5)]

    # then none of them read the snapshot itself (only its small head)
    assert [response.status_code for response in polled] == [200] * 5
    assert loads == []


def test_the_bodies_are_one_cache_entry_per_filter_set_across_snapshots(
    transactional_db, fleet, support_client, broker, clock
):
    # given answers of several snapshots for two filter sets
    mock_broker_snapshot(broker)
    for _ in range(4):
        assert support_client.get(STATS_URL).status_code == 200
        assert support_client.get(STATS_URL, FILTERED).status_code == 200
        clock.advance(3)
        support_client.get(STATS_URL)
        assert join_refresh(DEADLINE_SECONDS)
        assert join_answer_builds(DEADLINE_SECONDS)

    # then the cache holds one bodies entry per filter set, not one per snapshot
    keys = [key for key in cache._cache if ANSWER_BODY_KEY in key]
    assert len(keys) == 2


def test_finished_builds_are_not_kept(monkeypatch):
    # given ten builds that ended (they end at once; they leave their keys claimed: a set of
    # this test's own)
    monkeypatch.setattr(answers, "_build_in_background", lambda filters, key: None)
    monkeypatch.setattr(answers, "_building", set())
    for number in range(10):
        answers._start_answer_build(answers.AgentFilters(name=f"agent-{number}"))
    deadline = time.monotonic() + DEADLINE_SECONDS
    while any(thread.is_alive() for thread in list(answers._build_threads)):
        assert time.monotonic() < deadline, "the builds never ended"
        time.sleep(0.05)

    # when one more starts
    answers._start_answer_build(answers.AgentFilters(name="agent-last"))

    # then the process keeps that one only, not one per build ever started
    assert len(answers._build_threads) == 1
    assert join_answer_builds(DEADLINE_SECONDS)
