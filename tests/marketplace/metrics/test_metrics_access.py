"""Who may scrape /metrics (the token, or an allowed network), that the token never shows,
and that the answer is read-only and never cached."""

import pytest

from tests.kit.broker import SNAPSHOT_CALLS, mock_broker_snapshot
from tests.kit.metrics import PROMETHEUS_TEXT, TOKEN, URL


@pytest.mark.parametrize(
    ("token", "networks", "authorization", "remote_addr", "expected_status"),
    [
        pytest.param(TOKEN, [], f"Bearer {TOKEN}", "203.0.113.9", 200, id="token"),
        pytest.param(TOKEN, [], f"bearer {TOKEN}", "203.0.113.9", 200, id="token-any-case"),
        pytest.param(TOKEN, [], "Bearer wrong", "203.0.113.9", 403, id="wrong-token"),
        pytest.param(TOKEN, [], f"Bearer {TOKEN}x", "203.0.113.9", 403, id="token-prefix"),
        pytest.param(TOKEN, [], f"Token {TOKEN}", "203.0.113.9", 403, id="wrong-scheme"),
        pytest.param(TOKEN, [], None, "203.0.113.9", 403, id="no-header"),
        pytest.param("", [], "Bearer ", "203.0.113.9", 403, id="no-token-configured"),
        pytest.param("", ["10.0.0.0/8"], None, "10.1.2.3", 200, id="allowed-network"),
        pytest.param("", ["10.0.0.0/8"], None, "192.168.1.1", 403, id="other-network"),
        pytest.param("", ["10.0.0.0/8"], None, "::ffff:10.1.2.3", 200, id="ipv4-mapped"),
        pytest.param("", ["2001:db8::/32"], None, "2001:db8::7", 200, id="ipv6-network"),
        pytest.param("", ["2001:db8::/32"], None, "2001:db9::7", 403, id="other-ipv6"),
        pytest.param("", ["10.0.0.0/8"], None, "", 403, id="no-address"),
        pytest.param(TOKEN, ["10.0.0.0/8"], "Bearer wrong", "10.1.2.3", 200, id="network-wins"),
        pytest.param("", [], None, "127.0.0.1", 403, id="nothing-configured"),
    ],
)
def test_metrics_are_served_only_with_the_token_or_from_an_allowed_network(
    token, networks, authorization, remote_addr, expected_status, client, settings, fleet, broker
):
    # given
    settings.METRICS_TOKEN = token
    settings.METRICS_ALLOWED_NETWORKS = networks
    mock_broker_snapshot(broker, connections=fleet["connections"], queues=fleet["queues"])
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    # when
    response = client.get(URL, REMOTE_ADDR=remote_addr, **headers)

    # then
    assert response.status_code == expected_status
    if expected_status == 200:
        assert response["Content-Type"] == PROMETHEUS_TEXT
        assert len(broker.calls) == SNAPSHOT_CALLS
    else:
        assert response.json() == {
            "detail": "Metrics need the metrics token or a client on an allowed network.",
            "code": "permission_denied",
        }
        assert len(broker.calls) == 0


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", "Bearer wrong"])
def test_metrics_token_never_appears_in_a_response(authorization, client, settings, fleet, broker):
    # given
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    mock_broker_snapshot(broker, connections=fleet["connections"], queues=fleet["queues"])

    # when
    response = client.get(URL, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=authorization)

    # then
    assert response.status_code in (200, 403)
    assert TOKEN not in response.content.decode()
    assert all(TOKEN not in value for _, value in response.items())


def test_metrics_answer_only_reads(client, settings):
    # given
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    # when
    response = client.post(URL)

    # then
    assert response.status_code == 405


def test_metrics_are_never_cached(scraper, answering_broker):
    # when
    response = scraper()

    # then
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]
