"""With the database unreachable, the real server answers 503 in DRF's shape."""

from collections.abc import Iterator

import pytest
import requests

from tests.kit.gunicorn import serve_without_database


@pytest.fixture
def server_without_database() -> Iterator[str]:
    """gunicorn serving the app with DATABASE_URL at a port where nothing listens."""
    with serve_without_database() as url:
        yield url


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
    response = getattr(requests, method)(
        f"{server_without_database}{path}",
        headers={"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"},
        json={"offering": "00000000000000000000000000000000", "name": "x"},
        timeout=30,
    )

    # then it gets a 503 with a clear error, no stack trace (rather than hanging: the
    # request's own timeout bounds it)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }
