"""The shipped server (gunicorn with agentstats/gunicorn_conf.py) answers the agents'
database-only calls while stats requests wait on a management API that hangs."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token

from bench.hung import HungListener
from tests.factories import AgentIdentityFactory, CustomerFactory, OfferingFactory, UserFactory
from tests.kit.gunicorn import wait_until_serving
from tests.kit.network import free_port
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until

pytestmark = pytest.mark.live_server

STATS_PATH = "/api/marketplace-site-agent-connection-stats/"
STATS_POLLERS = 4
BURST_ROUNDS = 5
BURST_THREADS = 6
# Generous against a busy machine, far below what waiting for the broker would cost (the
# snapshot's read timeout is 60 s here, so nothing that waited on it could come in under).
DATABASE_CALL_BOUND_SECONDS = 5.0
# Long enough that the hung broker call outlasts the burst on a slow machine.
SNAPSHOT_READ_TIMEOUT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Fleet:
    support_token: str
    owner_token: str
    identity_uuid: str


@dataclass(frozen=True)
class CallResult:
    name: str
    status: int
    seconds: float


@pytest.fixture
def hung_broker() -> Iterator[HungListener]:
    with HungListener() as listener:
        yield listener


@pytest.fixture
def fleet(transactional_db, real_postgres):
    """Committed rows (the server is another process): a support user, an agent's owner."""
    owner = UserFactory()
    identity = AgentIdentityFactory(
        offering=OfferingFactory(customer=CustomerFactory(owners=[owner])), created_by=owner
    )
    support = UserFactory(is_support=True)
    return Fleet(
        support_token=Token.objects.get_or_create(user=support)[0].key,
        owner_token=Token.objects.get_or_create(user=owner)[0].key,
        identity_uuid=str(identity.uuid),
    )


@pytest.fixture
def threaded_server(fleet, hung_broker) -> Iterator[str]:
    """gunicorn with the shipped configuration (its default workers and threads), on the
    test database, its management API the hung listener."""
    port = free_port()
    db = connection.settings_dict
    env = {name: value for name, value in os.environ.items() if not name.startswith("GUNICORN_")}
    env.update(
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}"
        ),
        SECRET_KEY="test-only-secret-key",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        CACHE_URL="",
        RABBITMQ_MANAGEMENT_URL=hung_broker.url,
        RABBITMQ_SNAPSHOT_READ_TIMEOUT=str(SNAPSHOT_READ_TIMEOUT_SECONDS),
        RABBITMQ_READ_TIMEOUT=str(SNAPSHOT_READ_TIMEOUT_SECONDS),
    )
    process = subprocess.Popen(  # noqa: S603 - our own app under gunicorn
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:agentstats.gunicorn_conf",
            "agentstats.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        # Hung broker calls fail at once when the listener drops them; then stop.
        hung_broker.close()
        process.terminate()
        _, stderr = process.communicate(timeout=90)
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]


class StatsPollers:
    """Support pollers asking for the stats again and again until stopped."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url + STATS_PATH
        self.token = token
        self.statuses: list[int] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll) for _ in range(STATS_POLLERS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=HTTP_TIMEOUT_SECONDS)

    def _poll(self) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {self.token}"
            while not self._stop.is_set():
                with self._lock:
                    self.in_flight += 1
                status = session.get(self.url, timeout=HTTP_TIMEOUT_SECONDS).status_code
                with self._lock:
                    self.in_flight -= 1
                    self.statuses.append(status)


def call_as_agent(url: str, fleet: Fleet, name: str) -> CallResult:
    headers = {"Authorization": f"Token {fleet.owner_token}"}
    body = {"instance_id": fleet.identity_uuid}
    started = time.monotonic()
    if name == "heartbeat":
        response = requests.post(
            f"{url}/api/agents/record_heartbeat/", json=body, headers=headers, timeout=60
        )
    elif name == "envelope":
        response = requests.post(
            f"{url}/api/agents/get_connection/", json=body, headers=headers, timeout=60
        )
    else:
        response = requests.get(
            f"{url}/api/marketplace-site-agent-identities/", headers=headers, timeout=60
        )
    return CallResult(name, response.status_code, time.monotonic() - started)


def test_database_only_calls_answer_while_stats_requests_wait_on_a_hung_broker(
    threaded_server, hung_broker, fleet
):
    # given support pollers whose stats requests wait on the hung management API
    pollers = StatsPollers(threaded_server, fleet.support_token)
    pollers.start()
    try:
        wait_until(
            lambda: hung_broker.count_accepted() > 0,
            timeout=60,
            message="a stats request asks the hung management API",
        )

        # when the agents make a burst of database-only calls meanwhile
        burst_started = time.monotonic()
        names = ["heartbeat", "envelope", "identity list"] * BURST_ROUNDS
        with ThreadPoolExecutor(max_workers=BURST_THREADS) as pool:
            results = list(
                pool.map(lambda name: call_as_agent(threaded_server, fleet, name), names)
            )
        is_broker_call_pending = hung_broker.is_holding_since(burst_started)
        stats_in_flight = pollers.in_flight
    finally:
        # The waiting stats requests fail at once (503) when the "broker" drops them.
        hung_broker.close()
        pollers.stop()

    # then every call answered, none anywhere near the broker's timeout ...
    assert {(result.name, result.status) for result in results} == {
        ("heartbeat", 204),
        ("envelope", 200),
        ("identity list", 200),
    }
    slowest = max(results, key=lambda result: result.seconds)
    assert slowest.seconds < DATABASE_CALL_BOUND_SECONDS, slowest
    # ... while a broker call stayed unanswered from before the burst to after it, and
    # stats requests were still waiting (or had got 503, never an answer)
    assert is_broker_call_pending
    assert stats_in_flight > 0
    assert set(pollers.statuses) == {503}, pollers.statuses
