"""/metrics against the real RabbitMQ, following a real STOMP-over-WebSocket consumer."""

from typing import Any

import stomp
from rest_framework.authtoken.models import Token

from marketplace.names import AgentServiceState
from tests.factories import (
    AgentIdentityFactory,
    AgentServiceFactory,
    CustomerFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.metrics import URL, Samples, parse_samples, sample
from tests.kit.polling import wait_until
from tests.kit.real_broker import provision_agent

WAIT_SECONDS = 25


def test_metrics_follow_a_real_web_stomp_consumer(real_broker, client, settings):
    # given: two agents provisioned on the real broker; the first consumes over Web STOMP
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    owner = UserFactory(username="metrics-owner")
    offering = OfferingFactory(name="Metrics HPC", customer=CustomerFactory(owners=[owner]))
    subscriptions = []
    for name in ("metrics-ws", "metrics-idle"):
        identity = AgentIdentityFactory(offering=offering, created_by=owner, name=name)
        AgentServiceFactory(identity=identity, state=AgentServiceState.ACTIVE)
        subscriptions.append(provision_agent(identity, owner=owner, object_type="order"))
    (ws_subscription, ws_queue), _ = subscriptions
    ws = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=owner.uuid.hex
    )
    ws.connect(
        login=ws_subscription.uuid.hex, passcode=Token.objects.get(user=owner).key, wait=True
    )
    ws.subscribe(destination=f"/amq/queue/{ws_queue.queue_name}", id="q", ack="client")

    labels = {"offering_uuid": str(offering.uuid), "offering": "Metrics HPC"}

    def scrape_once_seen() -> tuple[Any, Samples] | None:
        response = client.get(URL, REMOTE_ADDR="127.0.0.1")
        samples = parse_samples(response.content.decode())
        is_seen = (
            sample(samples, "agentstats_agents", status="connected") == 1
            and sample(samples, "agentstats_queue_consumers", **labels) == 1
        )
        return (response, samples) if is_seen else None

    try:
        # when scraped until the broker lists the connection and the consumer
        response, samples = wait_until(
            scrape_once_seen,
            timeout=WAIT_SECONDS,
            interval=0.5,
            message="the metrics count the connection and the consumer",
        )
    finally:
        ws.disconnect()

    # then
    assert response.status_code == 200
    assert sample(samples, "agentstats_broker_up") == 1
    assert sample(samples, "agentstats_agents", status="connected") == 1
    assert sample(samples, "agentstats_agents", status="disconnected") == 1
    assert sample(samples, "agentstats_services", state="ACTIVE") == 2
    assert sample(samples, "agentstats_queue_consumers", **labels) == 1
    assert sample(samples, "agentstats_queued_messages", **labels) == 0
