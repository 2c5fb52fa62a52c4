"""Revoking a broker user's access, with HTTP mocked by `responses`: the exact calls
(paths URL-encoded, bodies, trimmed listing) and how failures surface."""

import json
import re

import pytest
import responses

from rmq.client import ManagementClient
from rmq.credentials import (
    CLOSE_REASON,
    close_user_connections,
    list_user_connections,
    set_user_password,
)
from rmq.exceptions import BrokerResponseError, BrokerUnavailable

BASE = "http://rabbit.test:15672"
USER = "0233d0c94a9544c0bca9b1709dc3c24d"
ANY_URL = re.compile(rf"{re.escape(BASE)}/api/.*")
LISTING = [
    {"name": "10.0.0.1:41000 -> 127.0.0.1:15674", "user": USER, "vhost": "v1"},
    {"name": "10.0.0.2:41001 -> 127.0.0.1:5672", "user": USER, "vhost": "v1"},
    {"name": "10.0.0.3:41002 -> 127.0.0.1:5672", "user": "someone-else", "vhost": "v2"},
]


def make_client() -> ManagementClient:
    return ManagementClient(
        BASE, user="agentstats", password="mgmt-pw", connect_timeout=1, read_timeout=2
    )


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_listing_asks_for_name_user_and_vhost_only_and_groups_by_user(mocked):
    # given
    mocked.add(responses.GET, f"{BASE}/api/connections", json=LISTING)

    # when
    listing = list_user_connections(make_client())

    # then
    assert mocked.calls[0].request.url == f"{BASE}/api/connections?columns=name%2Cuser%2Cvhost"
    assert listing.of(USER) == (LISTING[0]["name"], LISTING[1]["name"])
    assert listing.of("someone-else") == (LISTING[2]["name"],)
    assert listing.of("nobody") == ()


def test_closing_a_users_connections_deletes_each_by_its_encoded_name_with_a_reason(mocked):
    # given
    mocked.add(responses.GET, f"{BASE}/api/connections", json=LISTING)
    mocked.add(responses.DELETE, ANY_URL, status=204)

    # when
    closed = close_user_connections(make_client(), username=USER)

    # then only that user's two connections are closed, names URL-encoded
    assert closed == 2
    deletes = [call.request for call in mocked.calls if call.request.method == "DELETE"]
    assert [request.url for request in deletes] == [
        f"{BASE}/api/connections/10.0.0.1%3A41000%20-%3E%20127.0.0.1%3A15674",
        f"{BASE}/api/connections/10.0.0.2%3A41001%20-%3E%20127.0.0.1%3A5672",
    ]
    assert {request.headers["X-Reason"] for request in deletes} == {CLOSE_REASON}


def test_closing_uses_a_listing_taken_before_without_asking_again(mocked):
    # given a listing taken once for a whole sweep
    mocked.add(responses.GET, f"{BASE}/api/connections", json=LISTING)
    mocked.add(responses.DELETE, ANY_URL, status=204)
    client = make_client()
    listing = list_user_connections(client)

    # when two users' connections are closed with it
    close_user_connections(client, username=USER, connections=listing)
    close_user_connections(client, username="someone-else", connections=listing)

    # then the listing was fetched once
    assert [call.request.method for call in mocked.calls] == ["GET", "DELETE", "DELETE", "DELETE"]


def test_a_connection_already_gone_counts_as_closed(mocked):
    mocked.add(responses.GET, f"{BASE}/api/connections", json=LISTING[:1])
    mocked.add(responses.DELETE, ANY_URL, status=404)

    assert close_user_connections(make_client(), username=USER) == 1


def test_setting_a_password_puts_the_user_with_no_tags(mocked):
    # given
    mocked.add(responses.PUT, ANY_URL, status=204)

    # when
    set_user_password(make_client(), username=USER, password="new-token-key")

    # then
    (call,) = mocked.calls
    assert call.request.url == f"{BASE}/api/users/{USER}"
    assert json.loads(call.request.body) == {"password": "new-token-key", "tags": ""}


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, BrokerUnavailable), (401, BrokerUnavailable), (400, BrokerResponseError)],
)
def test_a_failing_broker_raises_the_adapters_errors(mocked, status, error):
    mocked.add(responses.PUT, ANY_URL, status=status)
    mocked.add(responses.GET, ANY_URL, status=status)

    with pytest.raises(error):
        set_user_password(make_client(), username=USER, password="k")
    with pytest.raises(error):
        list_user_connections(make_client())
