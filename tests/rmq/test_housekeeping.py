"""The broker side of housekeeping, with HTTP mocked by `responses`: the inventory's four
bulk listings and their parsing, the one-vhost lookup, and single declarations and
deletions (paths URL-encoded, missing objects count as deleted)."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from rmq.client import ManagementClient
from rmq.exceptions import BrokerResponseError, BrokerUnavailable
from rmq.housekeeping import (
    INVENTORY_CALLS,
    declare_queue,
    delete_queue,
    delete_vhost,
    fetch_broker_inventory,
    parse_vhost_tags,
    read_vhost_tags,
)
from rmq.naming import SERVICE_VHOST_TAG
from rmq.provisioning import CONSUMER_QUEUE_ARGUMENTS

BASE = "http://rabbit.test:15672"
OWN = "9a2b386ca3464aee9f313c0f20518f57"
QUEUE = "consumer_0233d0c94a9544c0bca9b1709dc3c24d"


def make_client() -> ManagementClient:
    return ManagementClient(
        BASE, user="agentstats", password="pw", connect_timeout=1, read_timeout=2
    )


def mock_inventory(
    broker: responses.RequestsMock,
    *,
    vhosts: object = None,
    queues: object = None,
    users: object = None,
    permissions: object = None,
) -> None:
    broker.add(responses.GET, f"{BASE}/api/vhosts", json=[] if vhosts is None else vhosts)
    broker.add(responses.GET, f"{BASE}/api/queues", json=[] if queues is None else queues)
    broker.add(responses.GET, f"{BASE}/api/users", json=[] if users is None else users)
    broker.add(
        responses.GET, f"{BASE}/api/permissions", json=[] if permissions is None else permissions
    )


def query_of(call: responses.Call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_inventory_is_four_bulk_listings_trimmed_with_columns(broker):
    # given
    mock_inventory(broker)

    # when
    fetch_broker_inventory(make_client())

    # then
    assert len(broker.calls) == INVENTORY_CALLS == 4
    assert [(urlsplit(call.request.url).path, query_of(call)) for call in broker.calls] == [
        ("/api/vhosts", {"columns": ["name,tags"]}),
        ("/api/queues", {"columns": ["name,vhost"], "disable_stats": ["true"]}),
        ("/api/users", {"columns": ["name"]}),
        ("/api/permissions", {"columns": ["user,vhost"]}),
    ]


def test_inventory_parses_vhost_tags_queues_users_and_permissions(broker):
    # given
    mock_inventory(
        broker,
        vhosts=[{"name": "/", "tags": []}, {"name": OWN, "tags": [SERVICE_VHOST_TAG, "x"]}],
        queues=[{"name": QUEUE, "vhost": OWN}],
        users=[{"name": "guest"}, {"name": "abc"}],
        permissions=[
            {"user": "guest", "vhost": "/"},
            {"user": "guest", "vhost": OWN},
            {"user": "abc", "vhost": OWN},
        ],
    )

    # when
    inventory = fetch_broker_inventory(make_client())

    # then
    assert inventory.vhost_tags == {"/": frozenset(), OWN: frozenset({SERVICE_VHOST_TAG, "x"})}
    assert inventory.tagged_vhosts() == {OWN}
    assert inventory.queues == {(OWN, QUEUE)}
    assert inventory.users == {"guest", "abc"}
    assert inventory.permission_vhosts == {"guest": {"/", OWN}, "abc": {OWN}}


@pytest.mark.parametrize(
    "listing",
    [
        pytest.param({"vhosts": {"name": OWN}}, id="vhosts-not-a-list"),
        pytest.param({"queues": [{"name": QUEUE}]}, id="queue-without-vhost"),
        pytest.param({"users": [{"name": 7}]}, id="user-name-not-text"),
        pytest.param({"permissions": ["guest"]}, id="permission-not-an-object"),
        pytest.param({"vhosts": [{"name": OWN, "tags": {"a": 1}}]}, id="tags-an-object"),
    ],
)
def test_inventory_rejects_listings_of_an_unexpected_shape(listing, broker):
    # given
    mock_inventory(broker, **listing)

    # when / then
    with pytest.raises(BrokerResponseError, match=r"unexpected|no list"):
        fetch_broker_inventory(make_client())


def test_inventory_fails_as_unavailable_when_a_listing_fails(broker):
    # given
    broker.add(responses.GET, f"{BASE}/api/vhosts", status=503)

    # when / then
    with pytest.raises(BrokerUnavailable):
        fetch_broker_inventory(make_client())


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ([SERVICE_VHOST_TAG, "b"], {SERVICE_VHOST_TAG, "b"}),
        (f"{SERVICE_VHOST_TAG}, b", {SERVICE_VHOST_TAG, "b"}),
        ("", set()),
        (None, set()),
        ([], set()),
    ],
)
def test_vhost_tags_are_read_as_a_list_or_a_comma_separated_string(raw, tags):
    assert parse_vhost_tags(raw) == tags


def test_one_vhost_lookup_asks_for_exactly_that_name(broker):
    # given
    broker.add(
        responses.GET,
        f"{BASE}/api/vhosts",
        json={"items": [{"name": OWN, "tags": [SERVICE_VHOST_TAG]}], "page": 1},
    )

    # when
    tags = read_vhost_tags(make_client(), vhost=OWN)

    # then
    assert tags == {SERVICE_VHOST_TAG}
    assert query_of(broker.calls[0]) == {
        "page": ["1"],
        "page_size": ["100"],
        "name": [f"^{OWN}$"],
        "use_regex": ["true"],
        "columns": ["name,tags"],
    }


def test_one_vhost_lookup_escapes_regex_characters_and_ignores_partial_matches(broker):
    # given the broker matches a longer name too
    broker.add(
        responses.GET, f"{BASE}/api/vhosts", json={"items": [{"name": "a.b-longer", "tags": []}]}
    )

    # when
    tags = read_vhost_tags(make_client(), vhost="a.b")

    # then
    assert tags is None
    assert query_of(broker.calls[0])["name"] == ["^a\\.b$"]


def test_one_vhost_lookup_says_none_for_a_missing_vhost(broker):
    # given
    broker.add(responses.GET, f"{BASE}/api/vhosts", json={"items": []})

    # when / then
    assert read_vhost_tags(make_client(), vhost=OWN) is None


def test_declare_queue_puts_a_durable_queue_with_its_arguments(broker):
    # given
    broker.add(responses.PUT, f"{BASE}/api/queues/{OWN}/{QUEUE}", status=201)

    # when
    declare_queue(make_client(), vhost=OWN, name=QUEUE, arguments=CONSUMER_QUEUE_ARGUMENTS)

    # then
    assert json.loads(broker.calls[0].request.body) == {
        "durable": True,
        "auto_delete": False,
        "arguments": CONSUMER_QUEUE_ARGUMENTS,
    }


@pytest.mark.parametrize("status", [204, 404])
def test_deletions_encode_the_path_and_count_a_missing_object_as_deleted(status, broker):
    # given
    broker.add(responses.DELETE, f"{BASE}/api/queues/%2F/{QUEUE}", status=status)
    broker.add(responses.DELETE, f"{BASE}/api/vhosts/a%2Fb", status=status)

    # when
    delete_queue(make_client(), vhost="/", name=QUEUE)
    delete_vhost(make_client(), vhost="a/b")

    # then
    assert [call.request.method for call in broker.calls] == ["DELETE", "DELETE"]


def test_a_failed_deletion_is_a_broker_error(broker):
    # given
    broker.add(responses.DELETE, f"{BASE}/api/vhosts/{OWN}", status=500)

    # when / then
    with pytest.raises(BrokerUnavailable):
        delete_vhost(make_client(), vhost=OWN)
