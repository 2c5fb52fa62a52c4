"""The shared stats answer over HTTP: gzipped once, an ETag that yields 304 while the
fleet's picture is unchanged, the snapshot's age on every answer, 503 with Retry-After."""

import gzip
import json
import re
import threading
from typing import Any

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.stats.answers import AnswerBodies, _BodyMemory
from marketplace.stats.views import accepts_gzip, is_etag_matched
from rmq.snapshot_cache import join_refresh
from tests.factories import AgentIdentityFactory, AgentServiceFactory
from tests.kit.api import STATS_URL
from tests.kit.broker import MANAGEMENT, mock_broker_snapshot

DEADLINE_SECONDS = 60


@pytest.fixture
def clock(snapshot_clock):
    return snapshot_clock


@pytest.fixture
def fleet(offering):
    return [AgentIdentityFactory(offering=offering, name=f"agent-{n}") for n in range(3)]


@pytest.fixture
def support_client(support_user, client_for):
    return client_for(support_user)


def _names(body: bytes) -> list[str]:
    return [agent["name"] for agent in json.loads(body)["agents"]]


def test_a_client_accepting_gzip_gets_the_body_compressed_once(fleet, support_client, broker):
    mock_broker_snapshot(broker)

    plain = support_client.get(STATS_URL)
    zipped = support_client.get(STATS_URL, HTTP_ACCEPT_ENCODING="br, gzip;q=0.8")

    assert (plain.status_code, zipped.status_code) == (200, 200)
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert gzip.decompress(zipped.content) == plain.content
    assert len(zipped.content) < len(plain.content)
    assert _names(plain.content) == ["agent-0", "agent-1", "agent-2"]


def test_a_matching_if_none_match_is_answered_304_with_the_snapshot_headers(
    fleet, support_client, broker, clock
):
    # given an answer and its ETag
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL)
    etag = first["ETag"]

    # when the poller asks again with it, 1.25 s later
    clock.advance(1.25)
    again = support_client.get(STATS_URL, HTTP_IF_NONE_MATCH=etag)

    # then it is told nothing changed, and how old the snapshot is
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    taken_at = json.loads(first.content)["summary"]["snapshot_taken_at"]
    assert again["X-Snapshot-Taken-At"] == first["X-Snapshot-Taken-At"] == taken_at
    assert again["X-Snapshot-Age"] == "1.250"
    assert first["X-Snapshot-Age"] == "0.000"
    assert re.fullmatch(
        r'broker;desc="shared";dur=[\d.]+, answer;desc="shared"', again["Server-Timing"]
    )


def test_the_etag_survives_a_new_snapshot_of_an_unchanged_fleet_and_changes_with_it(
    transactional_db, fleet, support_client, broker, clock
):
    # given an answer, then a snapshot refreshed after the TTL
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL)
    clock.advance(3)
    assert support_client.get(STATS_URL)["Server-Timing"].startswith('broker;desc="stale"')
    assert join_refresh(DEADLINE_SECONDS)

    # when the poller asks with the first ETag: the fleet is the same, the snapshot newer
    unchanged = support_client.get(STATS_URL, HTTP_IF_NONE_MATCH=first["ETag"])

    # then it is 304 with the newer snapshot's time
    assert unchanged.status_code == 304
    assert unchanged["X-Snapshot-Taken-At"] > first["X-Snapshot-Taken-At"]
    assert unchanged["X-Snapshot-Age"] == "0.000"

    # and once an agent is added and the next refresh has built its answer, it is a 200
    AgentServiceFactory(identity=AgentIdentityFactory(offering=fleet[0].offering, name="new"))
    clock.advance(3)
    support_client.get(STATS_URL)
    assert join_refresh(DEADLINE_SECONDS)
    changed = support_client.get(STATS_URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert "new" in _names(changed.content)
    assert (
        json.loads(changed.content)["summary"]["snapshot_taken_at"]
        == (changed["X-Snapshot-Taken-At"])
    )


def test_a_stale_snapshot_is_served_with_its_age_while_the_refresh_waits_on_the_broker(
    transactional_db, fleet, support_client, broker, clock
):
    # given an answer, then a broker that holds its next answer
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL)
    clock.advance(4.5)
    release, asked = threading.Event(), threading.Event()

    def held(request: Any) -> tuple[int, dict, str]:
        asked.set()
        assert release.wait(DEADLINE_SECONDS)
        return (200, {"Content-Type": "application/json"}, "[]")

    broker.reset()
    for path in ("connections", "queues", "consumers"):
        broker.add_callback(responses.GET, f"{MANAGEMENT}/api/{path}", callback=held)

    # when pollers ask (the list, and one agent)
    stale = support_client.get(STATS_URL)
    one = support_client.get(f"{STATS_URL}{fleet[1].uuid}/")
    assert asked.wait(DEADLINE_SECONDS)
    release.set()
    assert join_refresh(DEADLINE_SECONDS)

    # then they were answered from the old snapshot while its refresh was held
    assert (stale.status_code, one.status_code) == (200, 200)
    assert stale.content == first.content
    assert stale["X-Snapshot-Age"] == "4.500"
    assert stale["Server-Timing"].startswith('broker;desc="stale"')
    assert one.json()["name"] == "agent-1"


def test_a_refresh_started_by_another_view_also_builds_the_polled_whole_fleet_answer(
    transactional_db, fleet, support_client, broker, clock
):
    # given pollers of the whole fleet, then one agent's view asked after the TTL
    mock_broker_snapshot(broker)
    first = support_client.get(STATS_URL)
    clock.advance(3)
    assert support_client.get(f"{STATS_URL}{fleet[0].uuid}/").status_code == 200
    assert join_refresh(DEADLINE_SECONDS)

    # when a poller of the whole fleet asks
    polled = support_client.get(STATS_URL)

    # then it is served the answer the refresh built, from the newer snapshot
    assert polled["Server-Timing"] == (
        polled["Server-Timing"].split(",")[0] + ', answer;desc="shared"'
    )
    assert polled["X-Snapshot-Taken-At"] > first["X-Snapshot-Taken-At"]


def test_a_filtered_answer_is_built_once_and_shared(fleet, support_client, broker):
    mock_broker_snapshot(broker)
    support_client.get(STATS_URL)

    built = support_client.get(STATS_URL, {"name": "agent-2"})
    with CaptureQueriesContext(connection) as queries:
        shared = support_client.get(STATS_URL, {"name": "agent-2"})

    assert re.search(r'answer;desc="built";dur=[\d.]+$', built["Server-Timing"])
    assert shared["Server-Timing"].endswith('answer;desc="shared"')
    assert shared.content == built.content
    assert _names(shared.content) == ["agent-2"]
    assert len(queries) == 1  # the token


def test_an_outage_is_a_503_with_retry_after(fleet, support_client, broker, settings):
    settings.BROKER_FAILURE_TTL = 2.5
    for path in ("connections", "queues", "consumers"):
        broker.add(
            responses.GET,
            f"{MANAGEMENT}/api/{path}",
            body=requests.ConnectionError("Connection refused"),
        )

    first = support_client.get(STATS_URL)
    second = support_client.get(STATS_URL)

    for response in (first, second):
        assert response.status_code == 503
        assert response.json()["code"] == "broker_unavailable"
        assert response["Retry-After"] == "3"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("deflate", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(header, expected):
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('W/"abc"', True),
        ('"abc"', True),
        ('"other", W/"abc"', True),
        ("*", True),
        ('W/"other"', False),
        ("", False),
    ],
)
def test_if_none_match_is_compared_weakly(header, expected):
    assert is_etag_matched(header, 'W/"abc"') is expected


def test_a_process_keeps_the_newest_bodies_within_its_memory_bound():
    memory = _BodyMemory(max_bytes=100)
    small, large = AnswerBodies(b"x" * 30, b"y" * 10), AnswerBodies(b"x" * 90, b"y" * 20)

    memory.put("a", small)
    memory.put("b", small)
    assert memory.get("a") == small  # now the newest
    memory.put("c", small)  # 120 bytes: the oldest, "b", goes
    assert (memory.get("a"), memory.get("b"), memory.get("c")) == (small, None, small)
    memory.put("d", large)  # larger than the bound alone: kept, everything else goes
    assert (memory.get("a"), memory.get("c"), memory.get("d")) == (None, None, large)
