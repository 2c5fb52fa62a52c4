"""Debian's prometheus and promtool for the deploy/ tests, and a real Prometheus server
scraping a live instance of the service."""

from collections.abc import Iterator

import pytest

from tests.kit.prometheus import Binaries, PrometheusServer, find_binaries, start_prometheus
from tests.kit.services import require_service


@pytest.fixture
def prometheus_binaries() -> Binaries:
    """`prometheus` and `promtool` (`make prometheus` installs them); fails under CI=true."""
    binaries = find_binaries()
    require_service(binaries is not None, "prometheus and promtool (make prometheus)")
    assert binaries is not None
    return binaries


@pytest.fixture
def start_scraper(prometheus_binaries, live_server, tmp_path) -> Iterator:
    """Start a Prometheus scraping the live server with the given rules; stopped afterwards."""
    started: list[PrometheusServer] = []

    def start(rules) -> PrometheusServer:
        target = live_server.url.removeprefix("http://")
        server = start_prometheus(prometheus_binaries, tmp_path, target=target, rules=rules)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
