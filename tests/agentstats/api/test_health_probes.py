"""/healthz answers while the process serves; /readyz is 200 when the database answers and
503 when not, with the broker as the observer last saw it (never asked live)."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from marketplace.envelope import readiness
from tests.kit.container import aim_at, compose_healthcheck, dockerfile_healthcheck
from tests.kit.envelope import beat_as_active_observer
from tests.kit.gunicorn import serve_without_database

UNKNOWN_BROKER = {
    "state": "unknown",
    "reason": "observer_never_beat",
    "observer_last_beat_at": None,
}


@pytest.fixture
def server_without_database() -> Iterator[str]:
    with serve_without_database() as url:
        yield url


def test_healthz_answers_without_credentials_database_or_broker():
    # when (no database access is allowed in this test: pytest-django would refuse it)
    response = Client().get("/healthz")

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_take_only_get_and_head(db, path):
    client = Client()

    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


@pytest.mark.parametrize(
    ("beat_seconds_ago", "is_broker_available", "state", "reason"),
    [
        (5, True, "up", "observer_connected"),
        (5, False, "down", "observer_cannot_connect"),
        (61, True, "unknown", "observer_stale"),
    ],
)
def test_readyz_reports_the_broker_as_the_observer_last_saw_it_and_stays_ready(
    db, settings, beat_seconds_ago, is_broker_available, state, reason
):
    # given an observer that beat a while ago
    settings.OBSERVER_STALE_AFTER_SECONDS = 60
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    beat_as_active_observer(is_broker_available=is_broker_available, at=beat)

    # when
    response = Client().get("/readyz")

    # then the broker's state never fails readiness
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "broker": {"state": state, "reason": reason, "observer_last_beat_at": beat.isoformat()},
    }


def test_readyz_without_an_observer_is_ready_with_the_broker_unknown(db, django_assert_num_queries):
    # when
    with django_assert_num_queries(1):
        response = Client().get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["broker"] == UNKNOWN_BROKER


def test_readyz_is_503_when_the_database_query_fails(db, monkeypatch):
    # given a database that refuses (the one query the probe makes raises)
    def refuse() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(readiness, "find_observer_status", refuse)

    # when
    response = Client().get("/readyz")

    # then
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unavailable",
        "broker": UNKNOWN_BROKER,
    }


def test_probes_are_not_redirected_to_https_nor_authenticated(db, settings):
    # given production's HTTPS redirect
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    # then the API redirects, the probes answer over plain HTTP
    assert client.get("/api/version/").status_code == 301
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_real_server_without_database_is_alive_but_not_ready(server_without_database):
    # when
    alive = requests.get(f"{server_without_database}/healthz", timeout=30)
    ready = requests.get(f"{server_without_database}/readyz", timeout=30)

    # then
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "database": "unavailable",
        "broker": UNKNOWN_BROKER,
    }


def test_the_container_checks_pass_and_fail_as_the_probes_answer(server_without_database):
    # given the checks as docker-compose.yml and the Dockerfile declare them, aimed at a
    # real server whose database is unreachable
    liveness = aim_at(dockerfile_healthcheck(), server_without_database)
    readiness_check = aim_at(compose_healthcheck("app")[1:], server_without_database)

    # when they run as the container runs them (python from PATH there: ours here)
    def run(argv: list[str]) -> int:
        argv = [sys.executable, *argv[1:]]
        return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode  # noqa: S603

    # then the app is alive, and not ready
    assert run(liveness) == 0
    assert run(readiness_check) != 0
