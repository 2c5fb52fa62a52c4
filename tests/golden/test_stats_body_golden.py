"""The stats body for one fixed fleet and one fixed broker answer, byte for byte.

The golden file was written by the code before the features moved into packages; any change
to the body's bytes (keys, order, formatting, escapes) shows here. Regenerate it only for a
deliberate change of the wire format: `GOLDEN_WRITE=1 pytest tests/golden`.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from marketplace.models import (
    AgentIdentity,
    AgentService,
    EventSubscription,
    EventSubscriptionQueue,
)
from marketplace.names import AgentServiceState
from rmq.nodes import node_label
from tests.factories import (
    AgentIdentityFactory,
    AgentProcessorFactory,
    AgentServiceFactory,
    CustomerFactory,
    EventSubscriptionFactory,
    EventSubscriptionQueueFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.api import STATS_URL
from tests.kit.broker import MANAGEMENT, mock_broker_snapshot

GOLDEN = Path(__file__).resolve().parent / "stats_body.json"
T0 = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)
SNAPSHOT_PLACEHOLDER = b'"snapshot_taken_at":"<snapshot>"'
# The management node that answered is the configured one, whatever the environment says.
NODE_STAMP = f'"broker_node":"{node_label(MANAGEMENT)}"'.encode()
NODE_PLACEHOLDER = b'"broker_node":"<management node>"'


def _uuid(n):
    return UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + n)


def _build_fleet():
    owner = UserFactory(uuid=_uuid(1), username="owner-ü", first_name="Ada", last_name="Ł")
    other = UserFactory(uuid=_uuid(2), username="other", last_name="Lovelace")
    acme = CustomerFactory(uuid=_uuid(10), name="Acme HPC", owners=[owner])
    beta = CustomerFactory(uuid=_uuid(11), name="Beta \u2028 lab", owners=[other])
    slurm = OfferingFactory(uuid=_uuid(20), name="Acme SLURM", customer=acme)
    cloud = OfferingFactory(uuid=_uuid(21), name='Cloud "K8s" 🚀', customer=acme)
    beta_offering = OfferingFactory(uuid=_uuid(22), name="Beta MOAB", customer=beta)
    login1 = AgentIdentityFactory(
        uuid=_uuid(30), name="login-node-1", offering=slurm, created_by=owner, version="1.0.0"
    )
    login2 = AgentIdentityFactory(
        uuid=_uuid(31), name="login-node-2", offering=cloud, created_by=owner, version="0.9"
    )
    quiet = AgentIdentityFactory(
        uuid=_uuid(32), name="quiet\tagent", offering=beta_offering, created_by=other
    )
    AgentIdentityFactory(uuid=_uuid(33), name="bare", offering=slurm, created_by=None)
    orders = AgentServiceFactory(
        uuid=_uuid(40), identity=login1, name="event_process", state=AgentServiceState.ACTIVE
    )
    AgentProcessorFactory(uuid=_uuid(41), service=orders, name="SLURM")
    AgentServiceFactory(
        uuid=_uuid(42), identity=login1, name="membership_sync", state=AgentServiceState.IDLE
    )
    AgentServiceFactory(
        uuid=_uuid(43), identity=login2, name="order_process", state=AgentServiceState.ERROR
    )
    stomp = EventSubscriptionFactory(
        uuid=_uuid(50),
        agent_identity=login1,
        user=owner,
        observable_objects=[{"object_type": "order"}, {"object_type": "resource"}],
    )
    amqp = EventSubscriptionFactory(
        uuid=_uuid(51),
        agent_identity=login2,
        user=owner,
        observable_objects=[{"object_type": "user_role"}],
    )
    EventSubscriptionFactory(uuid=_uuid(52), agent_identity=quiet, user=other)
    order_queue = EventSubscriptionQueueFactory(
        uuid=_uuid(60), event_subscription=stomp, offering=slurm, object_type="order"
    )
    EventSubscriptionQueueFactory(
        uuid=_uuid(61), event_subscription=stomp, offering=slurm, object_type="resource"
    )
    role_queue = EventSubscriptionQueueFactory(
        uuid=_uuid(62), event_subscription=amqp, offering=cloud, object_type="user_role"
    )
    for offset, model in enumerate(
        [AgentIdentity, AgentService, EventSubscription, EventSubscriptionQueue]
    ):
        model.objects.update(
            created=T0 - timedelta(days=3, minutes=offset), modified=T0 - timedelta(minutes=offset)
        )
    AgentIdentity.objects.filter(uuid=_uuid(30)).update(last_restarted=T0 - timedelta(hours=5))
    vhost = owner.uuid.hex
    connections = [
        {
            "name": "127.0.0.1:51270 -> 127.0.0.1:15674",
            "node": "rabbit@node-a",
            "peer_host": "10.1.2.3",
            "protocol": "Web STOMP 1.2",
            "user": stomp.uuid.hex,
            "vhost": vhost,
            "connected_at": 1795502668419,
            "state": "running",
            "recv_oct": 1234,
            "send_oct": 5678,
        },
        {
            "name": "127.0.0.1:38832 -> 127.0.0.1:5672",
            "node": "rabbit@node-b",
            "peer_host": "10.1.2.4",
            "protocol": "AMQP 0-9-1",
            "user": amqp.uuid.hex,
            "vhost": vhost,
            "connected_at": 1795502668412,
            "state": "closing",
            "recv_oct": 477,
            "send_oct": 537,
        },
        {
            "name": "publisher",
            "node": "rabbit@node-a",
            "peer_host": "127.0.0.1",
            "protocol": "AMQP 0-9-1",
            "user": "guest",
            "vhost": vhost,
            "connected_at": 1795502668403,
            "state": "running",
        },
    ]
    queues = [
        {"name": order_queue.queue_name, "vhost": vhost, "messages": 7, "consumers": 1},
        {"name": role_queue.queue_name, "vhost": vhost, "messages": 0, "consumers": 0},
        {
            "name": f"subscription_{stomp.uuid.hex}_offering_{slurm.uuid.hex}_offering_user",
            "vhost": vhost,
            "messages": 2,
            "consumers": 0,
        },
    ]
    return {"connections": connections, "queues": queues}


@pytest.mark.parametrize("query", ["", "?connected=true", f"?customer_uuid={_uuid(10)}"])
def test_stats_body_is_byte_identical_to_the_golden_file(support_user, client_for, broker, query):
    # given a fixed fleet and a fixed broker answer
    broker_answer = _build_fleet()
    mock_broker_snapshot(broker, **broker_answer)

    # when support asks for the stats
    response = client_for(support_user).get(STATS_URL + query)

    # then the body is the golden one, but for the snapshot's own time
    assert response.status_code == 200
    taken_at = datetime.fromisoformat(response.json()["summary"]["snapshot_taken_at"])
    assert abs(datetime.now(tz=UTC) - taken_at) < timedelta(minutes=5)
    stamp = f'"snapshot_taken_at":"{response.json()["summary"]["snapshot_taken_at"]}"'.encode()
    assert response.content.count(stamp) == 1
    assert response.content.count(NODE_STAMP) == 1
    body = response.content.replace(stamp, SNAPSHOT_PLACEHOLDER).replace(
        NODE_STAMP, NODE_PLACEHOLDER
    )
    golden = GOLDEN.with_name(f"stats_body{query.replace('?', '_').replace('=', '_')}.json")
    if os.environ.get("GOLDEN_WRITE") == "1":
        golden.write_bytes(body)
    assert body == golden.read_bytes()
