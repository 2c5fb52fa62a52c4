"""The simulated agent's HTTP client of our API, mocked at the HTTP level: retries with
backoff, the attempt bound, stopping, and the registration calls the real agent makes."""

import json
import threading
from uuid import UUID

import pytest
import requests
import responses

from marketplace.simulator.agent import (
    AgentApiClient,
    AgentApiError,
    HttpPolicy,
    RegisteredAgent,
    SimulationError,
    SimulationStopped,
    SubscriptionEndpoint,
    build_identity_body,
    register_agent,
)

API = "http://agentstats.test"
FAST_RETRIES = HttpPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def api():
    """Our own API, mocked at the HTTP level; unexpected calls fail the test."""
    with responses.RequestsMock() as mock:
        yield mock


def make_api_client(stop: threading.Event | None = None) -> tuple[AgentApiClient, list[str]]:
    reports: list[str] = []
    client = AgentApiClient(
        API,
        token="t0ken",
        stop=stop or threading.Event(),
        policy=FAST_RETRIES,
        report=reports.append,
    )
    return client, reports


def test_api_client_retries_a_503_with_backoff_then_returns_the_answer(api):
    # given an API that is briefly unable to reach the broker
    url = f"{API}/api/event-subscriptions/abc/create_queue/"
    unavailable = {"detail": "Broker down.", "code": "broker_unavailable"}
    api.add(responses.POST, url, json=unavailable, status=503)
    api.add(responses.POST, url, json={"queue_name": "q"}, status=201)
    client, reports = make_api_client()

    # when the agent creates its queue
    answer = client.post("/api/event-subscriptions/abc/create_queue/", body={"x": 1})

    # then the second attempt's answer is returned, with the token, after one reported retry
    assert answer == {"queue_name": "q"}
    assert len(api.calls) == 2
    assert api.calls[1].request.headers["Authorization"] == "Token t0ken"
    assert reports == [
        "POST /api/event-subscriptions/abc/create_queue/ answered 503: Broker down.; "
        "retrying in 0 s"
    ]


def test_api_client_gives_up_after_the_attempt_bound(api):
    # given an API that always throttles
    api.add(responses.GET, f"{API}/api/users/", json={"detail": "Slow down."}, status=429)
    client, _ = make_api_client()

    # when the agent asks, then it gives up after exactly max_attempts calls
    with pytest.raises(SimulationError, match=r"answered 429: Slow down\. \(gave up after 3"):
        client.get("/api/users/", params={})
    assert len(api.calls) == 3


def test_api_client_does_not_retry_a_client_error(api):
    # given an API that rejects the body
    api.add(responses.POST, f"{API}/api/x/", json={"name": ["Required."]}, status=400)
    client, _ = make_api_client()

    # when the agent posts, then it fails at once with the status
    with pytest.raises(AgentApiError) as raised:
        client.post("/api/x/", body={})
    assert raised.value.status == 400
    assert len(api.calls) == 1


def test_api_client_stops_waiting_to_retry_when_asked_to_stop(api):
    # given an API that refuses and a stop already requested
    api.add(responses.GET, f"{API}/api/users/", body=requests.ConnectionError("refused"))
    stop = threading.Event()
    stop.set()
    client, _ = make_api_client(stop)

    # when the agent asks, then it stops after one attempt instead of backing off
    with pytest.raises(SimulationStopped):
        client.get("/api/users/", params={})
    assert len(api.calls) == 1


def test_api_client_rejects_a_success_that_is_not_json(api):
    api.add(responses.GET, f"{API}/api/users/", body="<html>proxy</html>", status=200)
    client, _ = make_api_client()

    with pytest.raises(AgentApiError, match="answered 200: not a JSON body"):
        client.get("/api/users/", params={})


def test_registration_updates_the_agent_found_on_its_offering_then_registers_the_rest(api):
    # given the name is taken on another offering and on ours
    offering, other = "a" * 32, "b" * 32
    # (the API answers dashed uuids; the agent was given the hex)
    identity = {"uuid": "1" * 32, "offering": str(UUID(offering))}
    identities = f"{API}/api/marketplace-site-agent-identities/"
    api.add(
        responses.GET,
        identities,
        match=[responses.matchers.query_param_matcher({"name": "sim-agent-1"})],
        json=[{"uuid": "9" * 32, "offering": other}, identity],
    )
    api.add(responses.PUT, f"{identities}{'1' * 32}/", json=identity)
    api.add(responses.POST, f"{identities}{'1' * 32}/register_service/", json={"uuid": "2" * 32})
    api.add(
        responses.POST,
        f"{API}/api/marketplace-site-agent-services/{'2' * 32}/register_processor/",
        json={},
    )
    api.add(
        responses.POST,
        f"{identities}{'1' * 32}/register_event_subscription/",
        json={"uuid": "33333333-3333-3333-3333-333333333333"},
    )
    api.add(
        responses.POST,
        f"{API}/api/event-subscriptions/{'3' * 32}/create_queue/",
        json={"queue_name": "q-order", "vhost": "v" * 32},
    )
    client, _ = make_api_client()

    # when the agent registers for one object type
    agent = register_agent(
        client, offering_uuid=offering, name="sim-agent-1", object_types=["order"]
    )

    # then it made the real agent's calls, in its order, with its bodies
    assert [(call.request.method, call.request.path_url) for call in api.calls] == [
        ("GET", "/api/marketplace-site-agent-identities/?name=sim-agent-1"),
        ("PUT", f"/api/marketplace-site-agent-identities/{'1' * 32}/"),
        ("POST", f"/api/marketplace-site-agent-identities/{'1' * 32}/register_service/"),
        ("POST", f"/api/marketplace-site-agent-services/{'2' * 32}/register_processor/"),
        ("POST", f"/api/marketplace-site-agent-identities/{'1' * 32}/register_event_subscription/"),
        ("POST", f"/api/event-subscriptions/{'3' * 32}/create_queue/"),
    ]
    bodies = [json.loads(call.request.body) for call in api.calls[2:]]
    assert bodies == [
        {"name": "event_process", "mode": "event_process"},
        {"name": "OfferingOrderProcessor", "backend_type": "simulated", "backend_version": "1.0.0"},
        {
            "observable_object_type": "order",
            "description": "Event subscription created by the simulated site agent",
        },
        {"offering_uuid": offering, "object_type": "order"},
    ]
    assert agent == RegisteredAgent(
        name="sim-agent-1",
        identity_uuid="1" * 32,
        subscriptions=(
            SubscriptionEndpoint(
                agent_name="sim-agent-1",
                object_type="order",
                subscription_uuid="3" * 32,
                vhost="v" * 32,
                queue_name="q-order",
            ),
        ),
    )


def test_identity_body_is_what_the_real_agent_sends():
    body = build_identity_body(offering_uuid="0" * 32, name="sim-agent-1")

    assert set(body) == {
        "offering",
        "name",
        "version",
        "dependencies",
        "config_file_path",
        "config_file_content",
        "last_restarted",
    }
    assert body["dependencies"] == [
        {"package": "waldur-site-agent", "entry_point": "waldur_site_agent", "version": "1.0.0"}
    ]
    assert body["config_file_path"] == ""
    assert body["config_file_content"] == ""
    # naive: no offset, as the real agent sends it
    assert "+" not in body["last_restarted"]
    assert not body["last_restarted"].endswith("Z")
