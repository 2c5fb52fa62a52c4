"""The fleet simulator: its flap plan and retry bounds (pure), its HTTP client (mocked at the
HTTP level), and a real run against the live server and the real RabbitMQ."""

import dataclasses
import json
import threading
from io import StringIO
from uuid import UUID

import pytest
import requests
import responses
from django.core.management import CommandError, call_command

from marketplace.models import (
    AgentConnectionState,
    AgentIdentity,
    AgentProcessor,
    AgentService,
    Customer,
    EventSubscription,
    EventSubscriptionQueue,
)
from marketplace.simulator.agent import (
    AgentApiClient,
    AgentApiError,
    HttpPolicy,
    RegisteredAgent,
    SimulationError,
    SimulationStopped,
    SubscriptionEndpoint,
    build_identity_body,
    compute_backoff_delay,
    register_agent,
)
from marketplace.simulator.fleet import (
    FlapSchedule,
    FleetSimulator,
    FleetStatus,
    RetryState,
    SimulationConfig,
    choose_flapping_agents,
    format_status_line,
    plan_offline_window,
    prepare_local_target,
)
from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get, publish

WAIT_SECONDS = 20
API = "http://agentstats.test"
FAST_RETRIES = HttpPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def api():
    """Our own API, mocked at the HTTP level; unexpected calls fail the test."""
    with responses.RequestsMock() as mock:
        yield mock


# --- the flap plan ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_count", "share", "expected"),
    [(5, 0.2, 1), (3, 0.5, 2), (4, 0.0, 0), (4, 1.0, 4), (10, 0.25, 3), (1, 0.4, 0)],
)
def test_flapping_agents_are_the_share_of_the_fleet_rounded_half_up(agent_count, share, expected):
    # when the flapping agents are chosen
    chosen = choose_flapping_agents(agent_count, share=share, seed=7)

    # then exactly the share is chosen, among the fleet's indexes
    assert len(chosen) == expected
    assert chosen <= frozenset(range(agent_count))


def test_the_same_seed_chooses_the_same_flapping_agents():
    # given two choices with one seed and one with another
    first = choose_flapping_agents(20, share=0.5, seed=3)
    again = choose_flapping_agents(20, share=0.5, seed=3)
    other_seeds = {choose_flapping_agents(20, share=0.5, seed=seed) for seed in range(4, 10)}

    # then the seed alone decides
    assert first == again
    assert len(other_seeds | {first}) > 1


@pytest.mark.parametrize("period_index", [0, 1, 7])
def test_an_offline_window_is_a_quarter_to_three_fifths_of_its_own_period(period_index):
    for seed in range(50):
        # when one agent's offline window is planned for a 20 s period
        window = plan_offline_window(2, period_index, period_seconds=20.0, seed=seed)

        # then it lies inside that period and covers 25-60 % of it
        assert period_index * 20.0 <= window.start < window.end <= (period_index + 1) * 20.0
        assert 5.0 <= window.end - window.start <= 12.0


def test_a_flapping_agent_is_offline_exactly_inside_its_window_and_online_around_it():
    # given a schedule where every agent flaps
    schedule = FlapSchedule(2, share=1.0, period_seconds=20.0, seed=11)
    window = schedule.window_at(1, 45.0)

    # then agent 1 is offline from the window's start up to (not including) its end
    assert 40.0 <= window.start < window.end <= 60.0
    assert schedule.is_online(1, elapsed=window.start - 0.01) is True
    assert schedule.is_online(1, elapsed=window.start) is False
    assert schedule.is_online(1, elapsed=(window.start + window.end) / 2) is False
    assert schedule.is_online(1, elapsed=window.end) is True


def test_agents_that_do_not_flap_are_always_online():
    # given a fleet of five with no flapping share
    schedule = FlapSchedule(5, share=0.0, period_seconds=2.0, seed=1)

    # then every agent is online at every moment
    assert schedule.flapping == frozenset()
    assert all(
        schedule.is_online(agent, elapsed=tenth / 10) for agent in range(5) for tenth in range(400)
    )


def test_a_flapping_agent_goes_offline_once_in_every_period():
    # given one agent that flaps with a 10 s period
    schedule = FlapSchedule(1, share=1.0, period_seconds=10.0, seed=5)

    # when its state is sampled every 0.1 s for 60 s
    states = [schedule.is_online(0, elapsed=tenth / 10) for tenth in range(600)]

    # then it went offline in each of the six periods, once per period
    offline_starts = [
        tenth for tenth in range(600) if not states[tenth] and (tenth == 0 or states[tenth - 1])
    ]
    assert [start // 100 for start in offline_starts] == [0, 1, 2, 3, 4, 5]


def test_the_plan_does_not_depend_on_the_order_it_is_asked_in():
    # given two schedules with one seed
    forward = FlapSchedule(4, share=0.5, period_seconds=20.0, seed=9)
    backward = FlapSchedule(4, share=0.5, period_seconds=20.0, seed=9)
    moments = [(agent, second / 2) for agent in range(4) for second in range(200)]

    # when they are asked in opposite orders
    forward_answers = {key: forward.is_online(key[0], elapsed=key[1]) for key in moments}
    backward_answers = {key: backward.is_online(key[0], elapsed=key[1]) for key in moments[::-1]}

    # then they agree on every moment
    assert forward_answers == backward_answers


def test_a_flap_period_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        FlapSchedule(3, share=0.5, period_seconds=0.0, seed=1)


# --- retry bounds ------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap():
    delays = [compute_backoff_delay(failures, base=1.0, cap=30.0) for failures in range(8)]

    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_refused_consumer_is_not_due_again_before_its_delay_has_passed():
    # given a consumer refused three times in a row
    retry = RetryState()
    delays = [retry.record_failure(100.0), retry.record_failure(101.0)]
    delays.append(retry.record_failure(103.0))

    # then each delay doubles and the next attempt waits for the last one
    assert delays == [1.0, 2.0, 4.0]
    assert retry.is_due(106.9) is False
    assert retry.is_due(107.0) is True


def test_a_connection_dropped_soon_after_connecting_keeps_backing_off():
    # given a consumer that failed twice, then connected and was dropped 5 s later
    retry = RetryState()
    retry.record_failure(0.0)
    retry.record_failure(1.0)
    retry.record_success(3.0)

    # when the drop is recorded
    delay = retry.record_failure(8.0)

    # then the delay keeps doubling
    assert delay == 4.0
    assert retry.failures == 3


def test_a_drop_after_a_long_stable_connection_starts_backoff_over():
    # given a consumer that failed twice, then held its connection for a minute
    retry = RetryState()
    retry.record_failure(0.0)
    retry.record_failure(1.0)
    retry.record_success(3.0)

    # when it is dropped
    delay = retry.record_failure(63.0)

    # then it retries after the base delay
    assert delay == 1.0
    assert retry.failures == 1


# --- the status line ---------------------------------------------------------------------


def test_status_line_counts_connections_and_messages_per_agent_busiest_first():
    status = FleetStatus(
        elapsed=75.4,
        total_agents=5,
        online_agents=4,
        total_consumers=10,
        connected_consumers=8,
        flapping_agents=1,
        connect_failures=2,
        messages={"sim-agent-1": 1, "sim-agent-2": 0, "sim-agent-3": 4, "sim-agent-4": 1},
    )

    assert format_status_line(status) == (
        "[01:15] agents connected 4/5, consumers 8/10, flapping 1, connect failures 2, "
        "messages 6 (sim-agent-3=4 sim-agent-1=1 sim-agent-4=1)"
    )


def test_status_line_without_messages_lists_no_agents():
    status = FleetStatus(
        elapsed=3.0,
        total_agents=2,
        online_agents=0,
        total_consumers=4,
        connected_consumers=0,
        flapping_agents=0,
        connect_failures=0,
        messages={"sim-agent-1": 0, "sim-agent-2": 0},
    )

    assert format_status_line(status) == (
        "[00:03] agents connected 0/2, consumers 0/4, flapping 0, connect failures 0, messages 0"
    )


# --- the HTTP client of our API ----------------------------------------------------------


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


# --- the command and its local setup -------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--agents", "2", "--token", "t"], "--token needs --offering-uuid."),
        (["--agents", "0", "--owner", "o"], "--agents must be at least 1."),
        (["--agents", "2", "--owner", "o", "--flap-share", "1.5"], "--flap-share must be"),
        (["--agents", "2", "--owner", "o", "--flap-seconds", "0"], "--flap-seconds must be"),
    ],
)
def test_command_rejects_bad_options_before_any_network_call(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_fleet", *arguments, stdout=StringIO())


def test_local_target_creates_the_owner_token_and_simulated_offering_once(db):
    # when the local target is prepared twice for one user
    first = prepare_local_target("sim-owner", offering_uuid=None)
    second = prepare_local_target("sim-owner", offering_uuid=None)

    # then one simulated customer owned by that user holds the one simulated offering
    assert first == second
    customer = Customer.objects.get(name="Simulated customer")
    assert [user.username for user in customer.owners.all()] == ["sim-owner"]
    assert [(o.name, str(o.uuid)) for o in customer.offerings.all()] == [
        ("Simulated offering", first.offering_uuid)
    ]


def test_local_target_with_an_unknown_offering_fails(db):
    with pytest.raises(SimulationError, match="No offering with uuid"):
        prepare_local_target("sim-owner", offering_uuid=UUID("7" * 32))


# --- a real run: live server, real RabbitMQ, real STOMP over WebSocket ---------------------


def management_connections() -> list[dict]:
    response = management_get("connections", params={"columns": "user,vhost,protocol"})
    assert response.status_code == 200, response.text
    return response.json()


def subscription_users() -> set[str]:
    return {subscription.uuid.hex for subscription in EventSubscription.objects.all()}


def connected_users() -> set[str]:
    return {connection["user"] for connection in management_connections()}


def describe_fleet() -> list[tuple]:
    """Each agent with its services, processors, subscriptions and queues, by name."""
    return [
        (
            identity.name,
            sorted(AgentService.objects.filter(identity=identity).values_list("name", "state")),
            sorted(
                AgentProcessor.objects.filter(service__identity=identity).values_list(
                    "name", "backend_type"
                )
            ),
            sorted(
                item["object_type"]
                for subscription in EventSubscription.objects.filter(agent_identity=identity)
                for item in subscription.observable_objects
            ),
            sorted(
                EventSubscriptionQueue.objects.filter(
                    event_subscription__agent_identity=identity
                ).values_list("object_type", flat=True)
            ),
        )
        for identity in AgentIdentity.objects.order_by("name")
    ]


@pytest.mark.broker
def test_simulated_fleet_registers_through_the_api_connects_counts_and_disconnects(
    transactional_db, real_broker, live_server
):
    # given an owner with a simulated offering, and a fleet of three that never flaps
    target = prepare_local_target("sim-owner", offering_uuid=None)
    config = SimulationConfig(
        base_url=live_server.url,
        token=target.token,
        offering_uuid=target.offering_uuid,
        agent_count=3,
        flap_share=0.0,
        duration=120.0,
        status_seconds=1.0,
    )
    lines = []
    simulator = FleetSimulator(config, write=lines.append)
    runner = threading.Thread(target=simulator.run, daemon=True)

    # when it runs
    runner.start()
    try:
        wait_until(
            lambda: len(subscription_users()) == 6,
            timeout=WAIT_SECONDS,
            message="six subscriptions registered",
        )
        users = subscription_users()

        def connected_when_all_are():
            current = connected_users()
            return current if users <= current else set()

        live = wait_until(
            connected_when_all_are, timeout=WAIT_SECONDS, message="every subscription connected"
        )

        # then three agents are registered with their service, processor, subscriptions, queues
        assert describe_fleet() == [
            (
                f"sim-agent-{number}",
                [("event_process", "Active")],
                [("OfferingOrderProcessor", "simulated")],
                ["order", "resource"],
                ["order", "resource"],
            )
            for number in (1, 2, 3)
        ]
        identities = AgentIdentity.objects.order_by("name")
        assert {str(identity.offering.uuid) for identity in identities} == {target.offering_uuid}
        assert {identity.version for identity in identities} == {"1.0.0"}
        assert all(identity.last_restarted is not None for identity in identities)
        # and the broker holds one STOMP connection per subscription, logged in as it
        owner_vhost = EventSubscription.objects.first().user.uuid.hex
        mine = [c for c in management_connections() if c["user"] in users]
        assert users <= live
        assert len(mine) == 6
        assert {(c["vhost"], c["protocol"]) for c in mine} == {(owner_vhost, "Web STOMP 1.2")}

        # when two messages are published to the first agent's order queue
        queue = EventSubscriptionQueue.objects.get(
            event_subscription__agent_identity__name="sim-agent-1", object_type="order"
        )
        publish(vhost=owner_vhost, queue_name=queue.queue_name, payload='{"n": 1}')
        publish(vhost=owner_vhost, queue_name=queue.queue_name, payload='{"n": 2}')

        # then the simulator counts them for that agent only
        expected_counts = {"sim-agent-1": 2, "sim-agent-2": 0, "sim-agent-3": 0}
        counts = wait_until(
            lambda: simulator.message_counts() == expected_counts,
            timeout=WAIT_SECONDS,
            message=f"message counts {expected_counts}",
        )
        assert counts is True
        # and records each as a dispatch of that agent through the API
        first_agent = AgentIdentity.objects.get(name="sim-agent-1")
        assert wait_until(
            lambda: AgentConnectionState.objects.filter(
                identity=first_agent, dispatches_succeeded=2
            ).exists(),
            timeout=WAIT_SECONDS,
            message="two dispatches recorded for sim-agent-1",
        )
        assert (
            not AgentConnectionState.objects.exclude(identity=first_agent)
            .filter(dispatches_succeeded__gt=0)
            .exists()
        )
    finally:
        simulator.stop()
        runner.join(timeout=60)

    # when it has stopped, then it ended on its own, said so, and the broker dropped every
    # connection
    assert runner.is_alive() is False
    assert lines[0] == (f"Registered 3 agents on offering {target.offering_uuid}; flapping: none.")
    assert lines[-1].endswith(
        "agents connected 0/3, consumers 0/6, flapping 0, connect failures 0, messages 2 "
        "(sim-agent-1=2)"
    )
    assert (
        wait_until(
            lambda: not (users & connected_users()),
            timeout=WAIT_SECONDS,
            message="the broker dropped every connection",
        )
        is True
    )

    # when it runs again for no time at all
    identity_uuids = set(AgentIdentity.objects.values_list("uuid", flat=True))
    FleetSimulator(dataclasses.replace(config, duration=0.0), write=lines.append).run()

    # then it re-registered the same agents, subscriptions and queues (idempotent)
    assert set(AgentIdentity.objects.values_list("uuid", flat=True)) == identity_uuids
    assert subscription_users() == users
    assert EventSubscriptionQueue.objects.count() == 6
    assert AgentService.objects.count() == 3
    assert AgentProcessor.objects.count() == 3


@pytest.mark.broker
def test_a_flapping_agent_disconnects_and_reconnects_on_its_plan(
    transactional_db, real_broker, live_server
):
    # given one agent with one subscription that flaps every 4 s
    target = prepare_local_target("flap-owner", offering_uuid=None)
    config = SimulationConfig(
        base_url=live_server.url,
        token=target.token,
        offering_uuid=target.offering_uuid,
        agent_count=1,
        flap_share=1.0,
        flap_seconds=4.0,
        duration=60.0,
        status_seconds=60.0,
        object_types=("order",),
        seed=3,
    )
    simulator = FleetSimulator(config, write=lambda line: None)
    runner = threading.Thread(target=simulator.run, daemon=True)

    # when it runs, sampled every 0.1 s until it was seen up, down and up again
    runner.start()
    seen = []
    try:

        def has_flapped():
            status = simulator.status(0.0)
            if status.total_consumers == 1 and (not seen or seen[-1] != status.connected_consumers):
                seen.append(status.connected_consumers)
            return "101" in "".join(map(str, seen))

        flapped = wait_until(has_flapped, timeout=WAIT_SECONDS, message="seen up, down and up")
        failures = simulator.status(0.0).connect_failures
    finally:
        simulator.stop()
        runner.join(timeout=60)

    # then it went down and came back on the plan, every connect accepted
    assert flapped is True
    assert failures == 0
    assert simulator.flapping_agents == frozenset({0})
    assert runner.is_alive() is False
