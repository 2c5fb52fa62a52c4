"""Vhost limits and the exact read permission, with HTTP mocked by `responses`."""

import json
import re

import pytest
import responses

from rmq.client import ManagementClient
from rmq.limits import VhostLimits, compute_vhost_limits, set_vhost_limits
from rmq.naming import build_queues_read_pattern

BASE = "http://rabbit.test:15672"
VHOST = "9a2b386ca3464aee9f313c0f20518f57"
QUEUE = "subscription_0233d0c94a9544c0bca9b1709dc3c24d_offering_012013ecc2e84a3c90e2d616541c82fb"


def make_client() -> ManagementClient:
    return ManagementClient(
        BASE, user="agentstats", password="pw", connect_timeout=1, read_timeout=2, get_retries=2
    )


@pytest.mark.parametrize(
    ("queues", "users", "per_user", "headroom", "expected"),
    [
        pytest.param(0, 0, 3, 5, VhostLimits(max_queues=5, max_connections=5), id="empty"),
        pytest.param(4, 2, 3, 0, VhostLimits(max_queues=4, max_connections=6), id="no-headroom"),
        pytest.param(3, 3, 2, 5, VhostLimits(max_queues=8, max_connections=11), id="both"),
    ],
)
def test_limits_are_the_needed_queues_and_connections_plus_the_headroom(
    queues, users, per_user, headroom, expected
):
    assert (
        compute_vhost_limits(
            queues=queues, broker_users=users, connections_per_user=per_user, headroom=headroom
        )
        == expected
    )


def test_setting_limits_puts_both_values_on_the_vhost(broker):
    # given
    broker.add(responses.PUT, re.compile(rf"{re.escape(BASE)}/api/.*"), status=204)

    # when
    set_vhost_limits(make_client(), vhost="/", limits=VhostLimits(max_queues=6, max_connections=8))

    # then: each limit by name, the vhost encoded, accepting what RabbitMQ 3.10 answers
    assert [
        (call.request.method, call.request.url, json.loads(call.request.body))
        for call in broker.calls
    ] == [
        ("PUT", f"{BASE}/api/vhost-limits/%2F/max-queues", {"value": 6}),
        ("PUT", f"{BASE}/api/vhost-limits/%2F/max-connections", {"value": 8}),
    ]
    assert all("*/*" in call.request.headers["Accept"] for call in broker.calls)


def test_the_read_pattern_matches_exactly_the_given_queues():
    other = QUEUE.replace("0233", "1111")
    pattern = re.compile(build_queues_read_pattern([f"{QUEUE}_order", f"{other}_resource"]))

    assert pattern.search(f"{QUEUE}_order")
    assert pattern.search(f"{other}_resource")
    for name in (
        f"{QUEUE}_resource",
        f"{QUEUE}_orde",
        f"{QUEUE}_order_x",
        f"x{QUEUE}_order",
        f"{other}_order",
        "amq.default",
        "",
    ):
        assert pattern.search(name) is None, name


def test_the_read_pattern_is_sorted_deduplicated_and_literal():
    assert build_queues_read_pattern(["b", "a.c", "b"]) == r"^(?:a\.c|b)$"
    assert re.search(build_queues_read_pattern(["a.c"]), "abc") is None


def test_no_queues_read_nothing():
    assert build_queues_read_pattern([]) == "^$"
