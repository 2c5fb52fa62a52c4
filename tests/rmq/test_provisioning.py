"""The broker side of an event subscription, with HTTP mocked by `responses`: the exact
management-API calls (paths URL-encoded, bodies), their order, and how failures surface."""

import json
import re
from base64 import b64encode

import pytest
import requests
import responses

from rmq.client import ManagementClient
from rmq.exceptions import BrokerResponseError, BrokerUnavailable
from rmq.limits import VhostLimits
from rmq.naming import SERVICE_VHOST_METADATA
from rmq.provisioning import (
    declare_subscription_queue,
    delete_subscription_user,
    provision_subscription_access,
)

BASE = "http://rabbit.test:15672"
PASSWORD = "mgmt-pw-never-sent-to-agents"
VHOST = "9a2b386ca3464aee9f313c0f20518f57"
SUBSCRIPTION = "0233d0c94a9544c0bca9b1709dc3c24d"
OFFERING = "012013ecc2e84a3c90e2d616541c82fb"
QUEUE = f"subscription_{SUBSCRIPTION}_offering_{OFFERING}_order"
ANY_URL = re.compile(rf"{re.escape(BASE)}/api/.*")
LIMITS = VhostLimits(max_queues=6, max_connections=8)


def make_client(*, user: str = "agentstats") -> ManagementClient:
    return ManagementClient(
        BASE, user=user, password=PASSWORD, connect_timeout=1, read_timeout=2, get_retries=2
    )


def sent(broker: responses.RequestsMock) -> list[tuple[str | None, str | None, object]]:
    """Each call as (method, URL as sent, JSON body)."""
    return [
        (
            call.request.method,
            call.request.url,
            None if call.request.body is None else json.loads(call.request.body),
        )
        for call in broker.calls
    ]


def provision_own_subscription() -> None:
    """Provision the subscription's access with its one queue and the owner's token."""
    provision_subscription_access(
        make_client(),
        vhost=VHOST,
        username=SUBSCRIPTION,
        password="owner-api-token",
        queue_names=[QUEUE],
        limits=LIMITS,
    )


# --- provisioning access --------------------------------------------------------------------


def test_access_puts_the_vhost_the_services_permissions_the_user_and_its_permissions(broker):
    # given
    broker.add(responses.PUT, ANY_URL, status=201)

    # when
    provision_own_subscription()

    # then
    assert sent(broker) == [
        ("PUT", f"{BASE}/api/vhosts/{VHOST}", SERVICE_VHOST_METADATA),
        (
            "PUT",
            f"{BASE}/api/permissions/{VHOST}/agentstats",
            {"configure": ".*", "write": ".*", "read": ".*"},
        ),
        ("PUT", f"{BASE}/api/vhost-limits/{VHOST}/max-queues", {"value": 6}),
        ("PUT", f"{BASE}/api/vhost-limits/{VHOST}/max-connections", {"value": 8}),
        ("PUT", f"{BASE}/api/users/{SUBSCRIPTION}", {"password": "owner-api-token", "tags": ""}),
        (
            "PUT",
            f"{BASE}/api/permissions/{VHOST}/{SUBSCRIPTION}",
            {"configure": "^$", "write": "^$", "read": f"^(?:{QUEUE})$"},
        ),
    ]


def test_access_encodes_every_path_segment(broker):
    # given the default vhost and a service user with characters a path cannot hold
    broker.add(responses.PUT, ANY_URL, status=204)

    # when
    provision_subscription_access(
        make_client(user="ops@agent stats"),
        vhost="/",
        username="sub/1",
        password="p",
        queue_names=[],
        limits=LIMITS,
    )

    # then
    assert [url for _, url, _ in sent(broker)] == [
        f"{BASE}/api/vhosts/%2F",
        f"{BASE}/api/permissions/%2F/ops%40agent%20stats",
        f"{BASE}/api/vhost-limits/%2F/max-queues",
        f"{BASE}/api/vhost-limits/%2F/max-connections",
        f"{BASE}/api/users/sub%2F1",
        f"{BASE}/api/permissions/%2F/sub%2F1",
    ]


def test_every_call_is_made_with_the_management_credentials(broker):
    # given
    broker.add(responses.PUT, ANY_URL, status=201)

    # when
    provision_own_subscription()

    # then
    basic = "Basic " + b64encode(f"agentstats:{PASSWORD}".encode()).decode()
    assert [call.request.headers["Authorization"] for call in broker.calls] == [basic] * 6
    assert [call.request.headers["Content-Type"] for call in broker.calls] == [
        "application/json"
    ] * 6


@pytest.mark.parametrize(
    ("failing_call", "answer", "error", "message"),
    [
        pytest.param(0, {"status": 503}, BrokerUnavailable, "failed with HTTP 503", id="vhost-503"),
        pytest.param(
            4,
            {"status": 401, "json": {"error": "not_authorized"}},
            BrokerUnavailable,
            "rejected the configured credentials",
            id="user-401",
        ),
        pytest.param(
            4,
            {"body": requests.ConnectionError("refused")},
            BrokerUnavailable,
            "unreachable",
            id="user-refused",
        ),
        pytest.param(
            5,
            {"status": 400, "json": {"error": "bad_request"}},
            BrokerResponseError,
            "answered HTTP 400",
            id="permissions-400",
        ),
    ],
)
def test_a_failing_call_stops_provisioning_with_the_broker_error_and_is_not_retried(
    failing_call, answer, error, message, broker
):
    # given a broker that accepts the calls before the failing one
    urls = [
        f"{BASE}/api/vhosts/{VHOST}",
        f"{BASE}/api/permissions/{VHOST}/agentstats",
        f"{BASE}/api/vhost-limits/{VHOST}/max-queues",
        f"{BASE}/api/vhost-limits/{VHOST}/max-connections",
        f"{BASE}/api/users/{SUBSCRIPTION}",
        f"{BASE}/api/permissions/{VHOST}/{SUBSCRIPTION}",
    ]
    for index, url in enumerate(urls):
        broker.add(responses.PUT, url, **(answer if index == failing_call else {"status": 201}))

    # when
    with pytest.raises(error, match=message) as raised:
        provision_own_subscription()

    # then nothing after it was asked, the failing call went once, and no secret shows
    assert [url for _, url, _ in sent(broker)] == urls[: failing_call + 1]
    assert "owner-api-token" not in str(raised.value)
    assert PASSWORD not in str(raised.value)


# --- the queue and the user -----------------------------------------------------------------


def test_declare_puts_a_durable_classic_queue_in_the_owners_vhost(broker):
    # given
    broker.add(responses.PUT, ANY_URL, status=201)

    # when
    declare_subscription_queue(make_client(), vhost=VHOST, name=QUEUE)

    # then
    assert sent(broker) == [
        (
            "PUT",
            f"{BASE}/api/queues/{VHOST}/{QUEUE}",
            {"durable": True, "auto_delete": False, "arguments": {}},
        )
    ]


def test_declaring_a_queue_that_exists_with_other_arguments_is_a_response_error(broker):
    # given the broker refuses to redeclare a queue with different properties
    broker.add(
        responses.PUT,
        ANY_URL,
        status=400,
        json={"error": "bad_request", "reason": "inequivalent arg 'durable'"},
    )

    # when / then
    with pytest.raises(BrokerResponseError, match="HTTP 400"):
        declare_subscription_queue(make_client(), vhost="/", name="q")
    assert broker.calls[0].request.url == f"{BASE}/api/queues/%2F/q"


def test_delete_removes_the_subscriptions_broker_user(broker):
    # given
    broker.add(responses.DELETE, ANY_URL, status=204)

    # when
    delete_subscription_user(make_client(), username=SUBSCRIPTION)

    # then
    assert sent(broker) == [("DELETE", f"{BASE}/api/users/{SUBSCRIPTION}", None)]


def test_deleting_a_user_the_broker_does_not_have_counts_as_deleted(broker):
    # given
    broker.add(responses.DELETE, ANY_URL, status=404, json={"error": "Object Not Found"})

    # when
    result = delete_subscription_user(make_client(), username=SUBSCRIPTION)

    # then
    assert result is None
    assert len(broker.calls) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": 500}, "failed with HTTP 500"),
        ({"body": requests.ConnectionError("refused")}, "unreachable"),
        ({"body": requests.ReadTimeout("timed out")}, "did not answer in time"),
    ],
)
def test_a_delete_the_broker_cannot_do_is_broker_unavailable_and_not_retried(
    answer, message, broker
):
    # given
    broker.add(responses.DELETE, ANY_URL, **answer)

    # when / then
    with pytest.raises(BrokerUnavailable, match=message):
        delete_subscription_user(make_client(), username=SUBSCRIPTION)
    assert len(broker.calls) == 1
