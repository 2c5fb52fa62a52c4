"""The management-API client, with HTTP mocked by `responses`: URLs, timeouts,
credentials, retries, status codes and bodies, and the snapshot's three calls."""

import logging
import re
from base64 import b64encode

import pytest
import requests
import responses

from rmq.client import ManagementClient
from rmq.exceptions import BrokerError, BrokerResponseError, BrokerUnavailable
from rmq.snapshot import CONNECTION_COLUMNS, CONSUMER_COLUMNS, QUEUE_PARAMS, fetch_broker_snapshot
from tests.kit.broker import captured

BASE = "http://rabbit.test:15672"
PASSWORD = "s3cret-management-pw"
VHOST = "9a2b386ca3464aee9f313c0f20518f57"


def _client(*, get_retries: int = 1) -> ManagementClient:
    return ManagementClient(
        f"{BASE}/",
        user="monitor",
        password=PASSWORD,
        connect_timeout=1.5,
        read_timeout=4.0,
        get_retries=get_retries,
    )


def _any(path: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(BASE)}/api/{path}.*")


def test_default_vhost_slash_is_encoded_as_one_path_segment(broker):
    # given
    broker.add(responses.PUT, _any("vhosts/"), status=201)
    broker.add(responses.PUT, _any("permissions/"), status=204)

    # when
    client = _client()
    client.put(["vhosts", "/"], body={})
    client.put(["permissions", "/", "user name"], body={"configure": ".*"})

    # then
    assert [call.request.url for call in broker.calls] == [
        f"{BASE}/api/vhosts/%2F",
        f"{BASE}/api/permissions/%2F/user%20name",
    ]


def test_get_encodes_segments_and_sends_query_params(broker):
    # given
    broker.add(responses.GET, _any("queues/"), json=[])

    # when
    _client().get_json(["queues", "/", "a/b"], params={"columns": "name,messages"})

    # then
    assert broker.calls[0].request.url == f"{BASE}/api/queues/%2F/a%2Fb?columns=name%2Cmessages"


def test_every_call_carries_the_connect_and_read_timeout_and_credentials(broker):
    # given
    broker.add(responses.GET, _any("overview"), json={})
    broker.add(responses.PUT, _any("vhosts/"), status=201)
    broker.add(responses.DELETE, _any("users/"), status=204)
    client = _client()

    # when
    client.get_json(["overview"])
    client.put(["vhosts", VHOST], body={})
    client.delete(["users", "someone"])

    # then
    basic = "Basic " + b64encode(f"monitor:{PASSWORD}".encode()).decode()
    assert [call.request.req_kwargs["timeout"] for call in broker.calls] == [(1.5, 4.0)] * 3
    assert [call.request.headers["Authorization"] for call in broker.calls] == [basic] * 3


def test_snapshot_listings_use_the_snapshot_read_timeout_and_other_calls_do_not(broker):
    # given a client whose snapshot listings may take longer than its other calls
    broker.add(responses.GET, _any("connections"), json=[])
    broker.add(responses.GET, _any("queues"), json=[])
    broker.add(responses.GET, _any("consumers"), json=[])
    broker.add(responses.GET, _any("overview"), json={})
    client = ManagementClient(
        BASE,
        user="monitor",
        password=PASSWORD,
        connect_timeout=1.5,
        read_timeout=4.0,
        snapshot_read_timeout=20.0,
    )

    # when a snapshot is fetched, then another resource read
    fetch_broker_snapshot(client)
    client.get_json(["overview"])

    # then the bulk listings waited up to 20 s, the other call up to 4 s
    timeouts = {
        call.request.url.split("?")[0]: call.request.req_kwargs["timeout"] for call in broker.calls
    }
    assert timeouts == {
        f"{BASE}/api/connections": (1.5, 20.0),
        f"{BASE}/api/queues": (1.5, 20.0),
        f"{BASE}/api/consumers": (1.5, 20.0),
        f"{BASE}/api/overview": (1.5, 4.0),
    }


def test_client_from_settings_uses_the_rabbitmq_settings(broker, settings):
    # given
    settings.RABBITMQ_MANAGEMENT_URL = "http://broker.example:15672/"
    settings.RABBITMQ_USER = "agentstats"
    settings.RABBITMQ_PASSWORD = PASSWORD
    settings.RABBITMQ_CONNECT_TIMEOUT = 0.7
    settings.RABBITMQ_READ_TIMEOUT = 3.0
    settings.RABBITMQ_SNAPSHOT_READ_TIMEOUT = 12.0
    broker.add(responses.GET, "http://broker.example:15672/api/overview", json={"ok": 1})

    # when
    client = ManagementClient.from_settings()
    body = client.get_json(["overview"])

    # then
    assert body == {"ok": 1}
    request = broker.calls[0].request
    assert request.req_kwargs["timeout"] == (0.7, 3.0)
    assert client.snapshot_timeout == (0.7, 12.0)
    assert request.headers["Authorization"] == (
        "Basic " + b64encode(f"agentstats:{PASSWORD}".encode()).decode()
    )


def test_get_is_retried_once_after_a_refused_connection(broker):
    # given a broker that refuses once, then answers
    broker.add(responses.GET, _any("connections"), body=requests.ConnectionError("refused"))
    broker.add(responses.GET, _any("connections"), json=[{"name": "c"}])

    # when
    body = _client(get_retries=1).get_json(["connections"])

    # then
    assert body == [{"name": "c"}]
    assert len(broker.calls) == 2


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_get_gives_up_after_the_configured_retries(retries, broker, settings):
    # given
    settings.RABBITMQ_GET_RETRIES = retries
    broker.add(responses.GET, _any("queues"), body=requests.ConnectionError("refused"))

    # when
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        ManagementClient.from_settings().get_json(["queues"])

    # then
    assert len(broker.calls) == 1 + retries


@pytest.mark.parametrize(
    ("method", "call"),
    [
        pytest.param(responses.PUT, lambda c: c.put(["users", "u"], body={}), id="put"),
        pytest.param(responses.DELETE, lambda c: c.delete(["users", "u"]), id="delete"),
    ],
)
def test_writes_are_never_retried_after_a_refused_connection(method, call, broker):
    # given
    broker.add(method, _any("users/"), body=requests.ConnectionError("refused"))

    # when
    with pytest.raises(BrokerUnavailable):
        call(_client(get_retries=3))

    # then
    assert len(broker.calls) == 1


def test_get_is_not_retried_after_a_read_timeout(broker):
    # given
    broker.add(responses.GET, _any("connections"), body=requests.ReadTimeout("read timed out"))

    # when
    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        _client(get_retries=1).get_json(["connections"])

    # then
    assert len(broker.calls) == 1


def test_get_is_not_retried_after_a_connect_timeout(broker):
    # given
    broker.add(responses.GET, _any("connections"), body=requests.ConnectTimeout("connect"))

    # when
    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        _client(get_retries=1).get_json(["connections"])

    # then
    assert len(broker.calls) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "rejected the configured credentials"),
        (403, "rejected the configured credentials"),
        (500, "failed with HTTP 500"),
        (502, "failed with HTTP 502"),
        (503, "failed with HTTP 503"),
    ],
)
def test_refused_credentials_and_server_errors_mean_unavailable(status, message, broker):
    # given
    broker.add(responses.GET, _any("connections"), status=status, json={"error": "x"})

    # when
    with pytest.raises(BrokerUnavailable, match=message):
        _client(get_retries=1).get_json(["connections"])

    # then only a refused connection is retried
    assert len(broker.calls) == 1


@pytest.mark.parametrize("status", [400, 404, 405])
def test_get_client_errors_are_response_errors(status, broker):
    # given
    broker.add(responses.GET, _any("queues"), status=status, json={"error": "bad_request"})

    # when
    with pytest.raises(BrokerResponseError, match=f"HTTP {status}") as raised:
        _client().get_json(["queues"])

    # then
    assert not isinstance(raised.value, BrokerUnavailable)
    assert isinstance(raised.value, BrokerError)


def test_put_bad_request_is_a_response_error(broker):
    # given
    broker.add(responses.PUT, _any("queues/"), status=400, json={"error": "bad_request"})

    # when / then
    with pytest.raises(BrokerResponseError, match="HTTP 400"):
        _client().put(["queues", VHOST, "q"], body={"durable": True})


def test_delete_of_a_missing_resource_counts_as_deleted(broker):
    # given
    broker.add(responses.DELETE, _any("users/"), status=404, json={"error": "Object Not Found"})

    # when
    result = _client().delete(["users", "gone"])

    # then
    assert result is None
    assert len(broker.calls) == 1


def test_body_that_is_not_json_is_a_response_error(broker):
    # given a proxy answering with an HTML page
    broker.add(
        responses.GET,
        _any("connections"),
        body="<html>Bad Gateway</html>",
        content_type="text/html",
    )

    # when / then
    with pytest.raises(BrokerResponseError, match="not JSON"):
        _client().get_json(["connections"])


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda: {"body": requests.ConnectionError("refused")}, id="refused"),
        pytest.param(lambda: {"body": requests.ReadTimeout("timed out")}, id="timeout"),
        pytest.param(lambda: {"status": 401, "json": {"error": "not_authorised"}}, id="401"),
        pytest.param(lambda: {"status": 500}, id="500"),
        pytest.param(lambda: {"status": 400}, id="400"),
        pytest.param(lambda: {"body": "not json"}, id="not-json"),
    ],
)
def test_password_never_appears_in_errors_or_logs(answer, broker, caplog):
    # given
    broker.add(responses.GET, _any("connections"), **answer())
    caplog.set_level(logging.DEBUG, logger="rmq")

    # when
    with pytest.raises(BrokerError) as raised:
        _client(get_retries=0).get_json(["connections"])

    # then the password was sent, but is in neither the error nor the log
    assert "Authorization" in broker.calls[0].request.headers
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in repr(raised.value.args)
    assert PASSWORD not in caplog.text


def test_snapshot_reads_all_connections_queues_and_consumers_in_three_trimmed_calls(broker):
    # given
    broker.add(responses.GET, _any("connections"), json=captured("connections_columns.json"))
    broker.add(responses.GET, _any("queues"), json=captured("queues_columns.json"))
    broker.add(responses.GET, _any("consumers"), json=captured("consumers.json"))

    # when
    snapshot = fetch_broker_snapshot(_client())

    # then
    assert (len(snapshot.connections), len(snapshot.queues)) == (3, 2)
    params = sorted((call.request.url.split("?")[0], call.request.params) for call in broker.calls)
    assert params == [
        (f"{BASE}/api/connections", {"columns": CONNECTION_COLUMNS}),
        (f"{BASE}/api/consumers", {"columns": CONSUMER_COLUMNS}),
        (f"{BASE}/api/queues", QUEUE_PARAMS),
    ]
