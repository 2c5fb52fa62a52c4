"""The management client on a cluster, with HTTP mocked by `responses`: each call goes to
the first node not remembered as down, a failing node is skipped and remembered for a
while, and the client says which node answered (host:port, never a credential)."""

import logging

import pytest
import requests
import responses

from rmq.client import BrokerCall, ManagementClient, listen_to_broker_calls
from rmq.exceptions import BrokerResponseError, BrokerUnavailable
from rmq.nodes import NodeMemory
from rmq.snapshot import fetch_broker_snapshot

NODES = ("http://rabbit-1.test:15672", "http://rabbit-2.test:15672", "http://rabbit-3.test:15672")
PASSWORD = "n0de-s3cret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock) -> NodeMemory:
    return NodeMemory(clock=clock)


def _client(memory: NodeMemory, *, nodes=NODES, get_retries: int = 0) -> ManagementClient:
    return ManagementClient(
        nodes,
        user="monitor",
        password=PASSWORD,
        connect_timeout=1.0,
        read_timeout=2.0,
        get_retries=get_retries,
        node_down_seconds=10.0,
        node_memory=memory,
    )


def _hosts(broker: responses.RequestsMock) -> list[str]:
    return [str(call.request.url).split("/")[2] for call in broker.calls]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"body": requests.ConnectionError("refused")}, id="refused"),
        pytest.param({"body": requests.ConnectTimeout("connect timed out")}, id="connect-timeout"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="read-timeout"),
        pytest.param({"status": 503}, id="http-503"),
        pytest.param({"status": 500}, id="http-500"),
    ],
)
def test_a_failing_first_node_is_skipped_and_the_second_answers(failure, broker, memory):
    # given node 1 fails, node 2 answers
    broker.add(responses.GET, f"{NODES[0]}/api/overview", **failure)
    broker.add(responses.GET, f"{NODES[1]}/api/overview", json={"node": 2})
    client = _client(memory)

    # when
    answer = client.fetch_json(["overview"])

    # then the second node answered, and the client says so, and node 1 is remembered down
    assert answer.body == {"node": 2}
    assert answer.node == "rabbit-2.test:15672"
    assert client.answered_by == "rabbit-2.test:15672"
    assert _hosts(broker) == ["rabbit-1.test:15672", "rabbit-2.test:15672"]
    assert client.nodes_remembered_down() == ("rabbit-1.test:15672",)


def test_a_node_remembered_down_is_not_asked_again_until_its_period_ends(broker, memory, clock):
    # given node 1 refused once
    broker.add(responses.GET, f"{NODES[0]}/api/overview", body=requests.ConnectionError("x"))
    broker.add(responses.GET, f"{NODES[1]}/api/overview", json={})
    client = _client(memory)
    client.get_json(["overview"])

    # when two more calls are made within RABBITMQ_NODE_DOWN_SECONDS
    clock.now += 9.5
    client.get_json(["overview"])
    client.get_json(["overview"])

    # then they went straight to node 2
    assert _hosts(broker) == ["rabbit-1.test:15672"] + ["rabbit-2.test:15672"] * 3

    # and after the period, node 1 is asked first again
    clock.now += 1.0
    broker.replace(responses.GET, f"{NODES[0]}/api/overview", json={"node": 1})
    assert client.get_json(["overview"]) == {"node": 1}
    assert client.nodes_remembered_down() == ()


def test_every_client_of_the_process_shares_the_memory(broker, memory):
    # given one client learnt node 1 is down
    broker.add(responses.GET, f"{NODES[0]}/api/overview", body=requests.ConnectionError("x"))
    broker.add(responses.GET, f"{NODES[1]}/api/overview", json={})
    _client(memory).get_json(["overview"])

    # when another client with the same memory calls
    _client(memory).get_json(["overview"])

    # then it skipped node 1 without asking
    assert _hosts(broker) == ["rabbit-1.test:15672", "rabbit-2.test:15672", "rabbit-2.test:15672"]


def test_when_every_node_is_remembered_down_all_are_asked_in_order(broker, memory):
    # given all three nodes were remembered down, and node 3 is back
    for label in ("rabbit-1.test:15672", "rabbit-2.test:15672", "rabbit-3.test:15672"):
        memory.mark_down(label, seconds=10)
    broker.add(responses.GET, f"{NODES[0]}/api/overview", body=requests.ConnectionError("x"))
    broker.add(responses.GET, f"{NODES[1]}/api/overview", status=502)
    broker.add(responses.GET, f"{NODES[2]}/api/overview", json={"node": 3})
    client = _client(memory)

    # when
    body = client.get_json(["overview"])

    # then the call asked them all in order instead of failing without asking
    assert body == {"node": 3}
    assert _hosts(broker) == ["rabbit-1.test:15672", "rabbit-2.test:15672", "rabbit-3.test:15672"]
    assert client.nodes_remembered_down() == ("rabbit-1.test:15672", "rabbit-2.test:15672")


def test_all_nodes_failing_is_broker_unavailable_and_retries_do_not_multiply(broker, memory):
    # given every node refuses, and one retry is configured
    for node in NODES:
        broker.add(responses.GET, f"{node}/api/queues", body=requests.ConnectionError("x"))
    client = _client(memory, get_retries=1)

    # when
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        client.get_json(["queues"])

    # then each node was asked once per pass: two passes, not retries times nodes squared
    assert len(broker.calls) == 2 * len(NODES)


def test_a_pass_with_a_timeout_is_not_retried(broker, memory):
    # given node 1 times out and the others refuse
    broker.add(responses.GET, f"{NODES[0]}/api/queues", body=requests.ReadTimeout("slow"))
    for node in NODES[1:]:
        broker.add(responses.GET, f"{node}/api/queues", body=requests.ConnectionError("x"))

    # when
    with pytest.raises(BrokerUnavailable):
        _client(memory, get_retries=3).get_json(["queues"])

    # then the timeout spent the budget: one pass only
    assert len(broker.calls) == len(NODES)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, BrokerUnavailable), (403, BrokerUnavailable), (400, BrokerResponseError)],
)
def test_a_rejected_credential_or_4xx_is_not_tried_on_another_node(status, error, broker, memory):
    # given node 1 rejects the request (the same on every node of a cluster)
    broker.add(responses.GET, f"{NODES[0]}/api/overview", status=status)

    # when
    with pytest.raises(error):
        _client(memory).get_json(["overview"])

    # then no other node was asked and node 1 is not remembered down
    assert _hosts(broker) == ["rabbit-1.test:15672"]
    assert memory.is_down("rabbit-1.test:15672") is False


@pytest.mark.parametrize(
    ("method", "call"),
    [
        pytest.param(responses.PUT, lambda c: c.put(["vhosts", "v"], body={}), id="put"),
        pytest.param(responses.DELETE, lambda c: c.delete(["vhosts", "v"]), id="delete"),
    ],
)
def test_writes_go_to_the_next_node_once_when_a_node_refuses(method, call, broker, memory):
    # given node 1 refuses the write
    broker.add(method, f"{NODES[0]}/api/vhosts/v", body=requests.ConnectionError("x"))
    broker.add(method, f"{NODES[1]}/api/vhosts/v", status=204)
    client = _client(memory)

    # when
    call(client)

    # then node 2 took it (PUT and DELETE are idempotent), each node once
    assert _hosts(broker) == ["rabbit-1.test:15672", "rabbit-2.test:15672"]
    assert client.answered_by == "rabbit-2.test:15672"


def test_each_node_asked_is_reported_to_the_call_listener(broker, memory):
    # given
    broker.add(responses.GET, f"{NODES[0]}/api/overview", body=requests.ConnectionError("x"))
    broker.add(responses.GET, f"{NODES[1]}/api/overview", json={})
    heard: list[BrokerCall] = []

    # when
    with listen_to_broker_calls(heard.append):
        _client(memory).get_json(["overview"])

    # then the failed attempt and the answer are both reported, by node, without any URL
    assert [(call.method, call.resource, call.node) for call in heard] == [
        ("GET", "overview", "rabbit-1.test:15672"),
        ("GET", "overview", "rabbit-2.test:15672"),
    ]


def test_labels_and_logs_name_host_and_port_never_the_userinfo(broker, memory, caplog):
    # given node URLs that carry credentials
    nodes = ("http://admin:url-secret@rabbit-1.test:15672/", "https://rabbit-2.test/")
    broker.add(
        responses.GET, "http://rabbit-1.test:15672/api/overview", body=requests.ConnectionError()
    )
    broker.add(responses.GET, "https://rabbit-2.test/api/overview", json={})
    client = _client(memory, nodes=nodes)

    # when
    with caplog.at_level(logging.WARNING, logger="rmq.client"):
        client.get_json(["overview"])

    # then
    assert client.node_labels == ("rabbit-1.test:15672", "rabbit-2.test:443")
    assert client.answered_by == "rabbit-2.test:443"
    assert "rabbit-1.test:15672" in caplog.text
    assert "url-secret" not in caplog.text
    assert PASSWORD not in caplog.text


def test_the_snapshot_names_the_node_that_answered_its_listings(broker, memory):
    # given node 1 is down and node 2 lists one queue on a down node
    for resource in ("connections", "queues", "consumers"):
        broker.add(responses.GET, f"{NODES[0]}/api/{resource}", body=requests.ConnectionError("x"))
    broker.add(responses.GET, f"{NODES[1]}/api/connections", json=[])
    broker.add(
        responses.GET,
        f"{NODES[1]}/api/queues",
        json=[{"name": "q", "vhost": "v", "state": "down", "node": "rabbit@rabbit-1"}],
    )
    broker.add(responses.GET, f"{NODES[1]}/api/consumers", json=[])

    # when
    snapshot = fetch_broker_snapshot(_client(memory))

    # then
    assert snapshot.answered_by == "rabbit-2.test:15672"
    (queue,) = snapshot.queues
    assert (queue.state, queue.node, queue.messages, queue.is_down) == (
        "down",
        "rabbit@rabbit-1",
        None,
        True,
    )


def test_a_single_url_behaves_as_before_even_when_remembered_down(broker, memory):
    # given one node that refused a moment ago
    broker.add(responses.GET, f"{NODES[0]}/api/overview", body=requests.ConnectionError("x"))
    client = _client(memory, nodes=NODES[0])
    with pytest.raises(BrokerUnavailable):
        client.get_json(["overview"])

    # when it is back
    broker.replace(responses.GET, f"{NODES[0]}/api/overview", json={"ok": 1})

    # then it is asked again at once: there is no other node to prefer
    assert client.get_json(["overview"]) == {"ok": 1}
    assert client.base_urls == (NODES[0],)


class SteppingClock:
    """time.monotonic for rmq.client, moved on by the mocked broker's answers."""

    def __init__(self) -> None:
        self.now = 5000.0

    def monotonic(self) -> float:
        return self.now


def _hanging_for(clock: SteppingClock, seconds: float):
    def answer(request):
        clock.now += seconds
        raise requests.ReadTimeout("read timed out")

    return answer


def _snapshot_client(memory: NodeMemory) -> ManagementClient:
    # connect 1 s, read 2 s for ordinary calls, 10 s for the snapshot's listings
    return ManagementClient(
        NODES,
        user="monitor",
        password=PASSWORD,
        connect_timeout=1.0,
        read_timeout=2.0,
        snapshot_read_timeout=10.0,
        node_down_seconds=10.0,
        node_memory=memory,
    )


def test_a_node_asked_after_a_hung_node_gets_at_least_connect_plus_read_timeout(
    broker, memory, monkeypatch
):
    # given node 1 accepts a listing and never answers: it uses the call's whole budget
    # (connect 1 + snapshot read 10)
    clock = SteppingClock()
    monkeypatch.setattr("rmq.client.time", clock)
    broker.add_callback(responses.GET, f"{NODES[0]}/api/queues", _hanging_for(clock, 11.0))
    broker.add(responses.GET, f"{NODES[1]}/api/queues", json=[])
    client = _snapshot_client(memory)

    # when
    answer = client.fetch_json(["queues"], timeout=client.snapshot_timeout)

    # then node 2 got a fresh connect timeout and the client's read timeout, not the
    # nothing that was left of the call's budget
    assert answer.node == "rabbit-2.test:15672"
    assert [call.request.req_kwargs["timeout"] for call in broker.calls] == [
        (1.0, 10.0),
        (1.0, 2.0),
    ]


def test_a_node_asked_after_a_slow_timeout_gets_what_is_left_when_that_is_more(
    broker, memory, monkeypatch
):
    # given node 1 times out after 4 s of the call's 11 s budget
    clock = SteppingClock()
    monkeypatch.setattr("rmq.client.time", clock)
    broker.add_callback(responses.GET, f"{NODES[0]}/api/queues", _hanging_for(clock, 4.0))
    broker.add(responses.GET, f"{NODES[1]}/api/queues", json=[])
    client = _snapshot_client(memory)

    # when
    client.fetch_json(["queues"], timeout=client.snapshot_timeout)

    # then node 2 may use the 7 s left (connect 1 + read 6)
    assert [call.request.req_kwargs["timeout"] for call in broker.calls] == [
        (1.0, 10.0),
        (1.0, 6.0),
    ]


def test_a_node_asked_after_a_hung_node_has_time_to_read_a_slow_large_listing(
    broker, memory, monkeypatch
):
    # given node 1 hangs out the call's budget, and node 2 streams a listing that takes
    # 2.5 s in all (more than the ~0 s left of the budget, less than connect + read)
    clock = SteppingClock()
    monkeypatch.setattr("rmq.client.time", clock)
    broker.add_callback(responses.GET, f"{NODES[0]}/api/queues", _hanging_for(clock, 11.0))

    def slow_listing(request):
        clock.now += 2.5
        return (200, {}, "[" + ",".join(['{"name": "q"}'] * 1000) + "]")

    broker.add_callback(responses.GET, f"{NODES[1]}/api/queues", slow_listing)
    client = _snapshot_client(memory)

    # when
    body = client.get_json(["queues"], timeout=client.snapshot_timeout)

    # then the listing arrived
    assert len(body) == 1000


def test_a_call_over_hung_nodes_stops_at_its_bound_and_remembers_them(broker, memory, monkeypatch):
    # given nodes 1 and 2 each hang for as long as they are allowed
    clock = SteppingClock()
    monkeypatch.setattr("rmq.client.time", clock)
    started = clock.now

    def hang_out_the_timeout(request):
        connect, read = request.req_kwargs["timeout"]
        clock.now += connect + read
        raise requests.ReadTimeout("read timed out")

    for node in NODES:
        broker.add_callback(responses.GET, f"{node}/api/queues", hang_out_the_timeout)
    client = _snapshot_client(memory)

    # when
    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        client.get_json(["queues"], timeout=client.snapshot_timeout)

    # then the call took the budget plus one fallback allowance, no more (node 3 had no
    # time left), and the hung nodes are remembered: the next call starts at node 3
    assert clock.now - started == client.call_bound(client.snapshot_timeout) == 14.0
    assert _hosts(broker) == ["rabbit-1.test:15672", "rabbit-2.test:15672"]
    assert client.nodes_remembered_down() == ("rabbit-1.test:15672", "rabbit-2.test:15672")
    broker.replace(responses.GET, f"{NODES[2]}/api/queues", json=[])
    client.get_json(["queues"], timeout=client.snapshot_timeout)
    assert _hosts(broker)[-1] == "rabbit-3.test:15672"


def test_a_timeout_is_not_retried(broker, memory, monkeypatch):
    # given node 1 hangs, node 2 answers 503, retries are configured
    clock = SteppingClock()
    monkeypatch.setattr("rmq.client.time", clock)
    broker.add_callback(responses.GET, f"{NODES[0]}/api/overview", _hanging_for(clock, 3.0))
    broker.add(responses.GET, f"{NODES[1]}/api/overview", status=503)
    broker.add(responses.GET, f"{NODES[2]}/api/overview", status=503)
    client = _client(memory, get_retries=2)

    # when
    with pytest.raises(BrokerUnavailable):
        client.get_json(["overview"])

    # then each node was asked once
    assert _hosts(broker) == [
        "rabbit-1.test:15672",
        "rabbit-2.test:15672",
        "rabbit-3.test:15672",
    ]


def test_a_success_that_began_before_a_timeout_does_not_forget_it(memory):
    # given a small call to node 1 began, then a listing on node 1 timed out
    label = "rabbit-1.test:15672"
    seen = memory.failures_of(label)
    memory.mark_down(label, seconds=10)

    # when the small call's answer arrives
    memory.mark_up(label, failures_seen=seen)

    # then node 1 is still remembered down; an answer begun after the failure clears it
    assert memory.is_down(label)
    memory.mark_up(label, failures_seen=memory.failures_of(label))
    assert not memory.is_down(label)
