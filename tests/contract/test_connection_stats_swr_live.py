"""The stats over real HTTP with Redis as the shared cache: a hung management API is a
prompt 503, never a wait on the fetch; with the real broker the warm answer is served
without a broker fetch, gzipped, and 304 to a poller holding its ETag."""

import socket
import time
from collections.abc import Iterator

import pytest
import redis
import requests
from django.core.cache import caches
from rest_framework.authtoken.models import Token

from marketplace.stats.answers import forget_answers_in_memory
from rmq.snapshot_cache import join_refresh
from tests.factories import AgentIdentityFactory, UserFactory
from tests.kit.api import STATS_URL
from tests.kit.polling import wait_until
from tests.kit.services import require_service

# Far below the hung fetch's own bound (connect + read timeout, 2 + 15 s by default): the
# answer came without waiting for the fetch; generous, so a busy machine meets it.
PROMPT_SECONDS = 5
REQUEST_TIMEOUT_SECONDS = 30
# A Redis database of its own: other tests use db 15.
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_cache(settings) -> Iterator[None]:
    """The real Redis as the shared cache, as CACHE_URL=redis://... configures it."""
    try:
        is_up = bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        is_up = False
    require_service(is_up, "Redis on 127.0.0.1:6379")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    caches["default"].clear()
    yield
    assert join_refresh(90)
    caches["default"].clear()


@pytest.fixture
def hung_management_api() -> Iterator[str]:
    """Accepts connections (kernel backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def support_token(transactional_db) -> str:
    AgentIdentityFactory(name="swr-agent")
    user = UserFactory(username="swr-support", is_support=True)
    return Token.objects.get_or_create(user=user)[0].key


def get_stats(live_server, token: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{live_server.url}{STATS_URL}",
        headers={"Authorization": f"Token {token}", **headers},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


def test_a_hung_management_api_is_answered_503_promptly_every_time(
    redis_cache, live_server, support_token, hung_management_api, settings
):
    # given a management API that accepts and never answers, and the default wait bound
    settings.RABBITMQ_MANAGEMENT_URL = hung_management_api
    settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT = 8
    settings.BROKER_SNAPSHOT_WAIT = 0.8

    # when pollers ask, one after another, while the fetch hangs
    outcomes = []
    for _ in range(4):
        started = time.monotonic()
        response = get_stats(live_server, support_token)
        outcomes.append((response, time.monotonic() - started))

    # then each is a 503 broker_unavailable with Retry-After, without waiting on the fetch
    for response, elapsed in outcomes:
        assert response.status_code == 503
        assert response.json()["code"] == "broker_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert elapsed < PROMPT_SECONDS


def test_the_warm_answer_is_served_gzipped_and_304_without_a_broker_fetch(
    redis_cache, live_server, support_token, real_broker, settings
):
    # given the real broker and a warm shared answer
    settings.BROKER_SNAPSHOT_TTL = 30
    settings.BROKER_SNAPSHOT_MAX_AGE = 60
    first = get_stats(live_server, support_token)
    assert first.status_code == 200, first.text
    # as another process would, this one reads the bodies from Redis, not its memory
    forget_answers_in_memory()

    # when pollers ask again: one accepting gzip (requests does), one with the ETag, and one
    # that accepts no encoding
    zipped = get_stats(live_server, support_token)
    not_modified = get_stats(live_server, support_token, **{"If-None-Match": first.headers["ETag"]})
    raw = requests.get(
        f"{live_server.url}{STATS_URL}",
        headers={"Authorization": f"Token {support_token}", "Accept-Encoding": "identity"},
        timeout=REQUEST_TIMEOUT_SECONDS,
        stream=True,
    )
    plain = raw.raw.read()

    # then they were served the shared snapshot and answer, without asking the broker
    for response in (zipped, not_modified):
        assert response.headers["Server-Timing"].startswith('broker;desc="shared"')
        assert response.headers["Server-Timing"].endswith('answer;desc="shared"')
    # compressed once: requests undid one gzip and found the JSON
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.json()["agents"][0]["name"] == "swr-agent"
    assert zipped.content == plain
    assert int(zipped.headers["Content-Length"]) < len(plain)
    assert "Content-Encoding" not in raw.headers
    # and 304 with the snapshot's time and age
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert (
        not_modified.headers["X-Snapshot-Taken-At"]
        == (first.json()["summary"]["snapshot_taken_at"])
    )
    assert float(not_modified.headers["X-Snapshot-Age"]) >= 0


def test_a_stale_answer_is_served_while_the_real_broker_is_asked_beside_it(
    redis_cache, live_server, support_token, real_broker, settings
):
    # given a 1 s TTL and a warm answer
    settings.BROKER_SNAPSHOT_TTL = 1
    settings.BROKER_SNAPSHOT_MAX_AGE = 60
    first = get_stats(live_server, support_token)
    assert first.status_code == 200, first.text

    # when a poller asks after the TTL
    def stale_answer() -> requests.Response | None:
        response = get_stats(live_server, support_token)
        return response if "stale" in response.headers["Server-Timing"] else None

    stale = wait_until(stale_answer, timeout=60, interval=1, message="a stale answer")

    # then it was the old snapshot's answer, and the refresh beside it brings a newer one
    assert (
        stale.json()["summary"]["snapshot_taken_at"]
        == (first.json()["summary"]["snapshot_taken_at"])
    )

    def newer_answer() -> requests.Response | None:
        response = get_stats(live_server, support_token)
        taken_at = response.json()["summary"]["snapshot_taken_at"]
        return response if taken_at > first.json()["summary"]["snapshot_taken_at"] else None

    newer = wait_until(newer_answer, timeout=60, interval=0.5, message="a refreshed answer")
    assert newer.json()["agents"][0]["name"] == "swr-agent"
