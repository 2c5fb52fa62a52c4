"""rmq reports every management API call to the listener of the calling context, its
worker threads' calls included, and nothing to anyone once the block ends."""

import pytest
import requests
import responses

from rmq.client import BrokerCall, ManagementClient, listen_to_broker_calls
from rmq.exceptions import BrokerUnavailable
from rmq.snapshot import fetch_broker_snapshot
from tests.kit.broker import MANAGEMENT, SNAPSHOT_CALLS, mock_broker_snapshot, slow_answer


def make_client() -> ManagementClient:
    return ManagementClient(
        MANAGEMENT, user="guest", password="guest-secret", connect_timeout=1, read_timeout=1
    )


def test_each_call_is_reported_with_its_method_resource_and_duration(broker):
    # given
    broker.add_callback(responses.GET, f"{MANAGEMENT}/api/overview", callback=slow_answer(0.02))
    broker.add(responses.PUT, f"{MANAGEMENT}/api/vhosts/v1", status=201)
    broker.add(responses.DELETE, f"{MANAGEMENT}/api/vhosts/v1", status=404)
    heard: list[BrokerCall] = []
    client = make_client()

    # when
    with listen_to_broker_calls(heard.append):
        client.get_json(["overview"])
        client.put(["vhosts", "v1"], body={})
        client.delete(["vhosts", "v1"])

    # then
    assert [(call.method, call.resource) for call in heard] == [
        ("GET", "overview"),
        ("PUT", "vhosts"),
        ("DELETE", "vhosts"),
    ]
    assert heard[0].seconds >= 0.02
    assert all(call.started_at > 0 for call in heard)
    assert "guest-secret" not in repr(heard)


def test_a_failed_call_is_reported_too(broker):
    # given a broker that refuses, and one retry of the GET
    broker.add(responses.GET, f"{MANAGEMENT}/api/overview", body=requests.ConnectionError())
    client = ManagementClient(
        MANAGEMENT, user="guest", password="guest", connect_timeout=1, read_timeout=1, get_retries=1
    )
    heard: list[BrokerCall] = []

    # when
    with listen_to_broker_calls(heard.append), pytest.raises(BrokerUnavailable):
        client.get_json(["overview"])

    # then each attempt was a call
    assert [(call.method, call.resource) for call in heard] == [("GET", "overview")] * 2


def test_the_snapshot_s_concurrent_calls_are_heard_from_its_worker_threads(broker):
    # given
    mock_broker_snapshot(broker)
    heard: list[BrokerCall] = []

    # when
    with listen_to_broker_calls(heard.append):
        fetch_broker_snapshot(make_client())

    # then
    assert sorted(call.resource for call in heard) == ["connections", "consumers", "queues"]
    assert len(heard) == SNAPSHOT_CALLS


def test_calls_outside_the_block_reach_no_listener(broker):
    # given
    mock_broker_snapshot(broker)
    heard: list[BrokerCall] = []
    with listen_to_broker_calls(heard.append):
        pass

    # when
    fetch_broker_snapshot(make_client())

    # then
    assert heard == []
