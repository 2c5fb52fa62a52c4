"""`manage.py simulate_fleet`: its options and local setup, and a real run against the live
server and the real RabbitMQ over STOMP over WebSocket."""

import dataclasses
import threading
from io import StringIO
from uuid import UUID

import pytest
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
from marketplace.simulator.agent import SimulationError
from marketplace.simulator.fleet import FleetSimulator, SimulationConfig
from marketplace.simulator.target import prepare_local_target
from tests.kit.polling import wait_until
from tests.kit.real_broker import management_get, publish

WAIT_SECONDS = 20


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
