"""With the database unreachable, the real server answers 503 in DRF's shape, fast."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.kit.network import free_port
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until


@pytest.fixture
def server_without_database() -> Iterator[str]:
    """gunicorn serving the app with DATABASE_URL at a port where nothing listens."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/agentstats",
        SECRET_KEY="test-only-secret-key",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
    )
    process = subprocess.Popen(  # noqa: S603 - our own app under gunicorn
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "agentstats.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def is_listening() -> bool:
        try:
            requests.get(f"{url}/api/schema/", timeout=1)
        except (requests.ConnectionError, requests.Timeout):
            return False
        return True

    try:
        wait_until(is_listening, timeout=20, interval=0.2, message="gunicorn listens")
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
        assert b"Traceback" not in stderr


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/marketplace-site-agent-connection-stats/"),
        ("get", "/api/marketplace-site-agent-identities/"),
        ("post", "/api/marketplace-site-agent-identities/"),
    ],
)
def test_api_answers_503_database_unavailable_when_postgres_is_unreachable(
    server_without_database, method, path
):
    # when an agent calls with a token (the token lookup needs the database)
    started = time.monotonic()
    response = getattr(requests, method)(
        f"{server_without_database}{path}",
        headers={"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"},
        json={"offering": "00000000000000000000000000000000", "name": "x"},
        timeout=30,
    )

    # then it gets a prompt 503 with a clear error, no stack trace
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }
    assert time.monotonic() - started < 10
