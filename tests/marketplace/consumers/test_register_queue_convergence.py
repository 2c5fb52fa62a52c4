"""register_queue converges on the real RabbitMQ and PostgreSQL: concurrent repeats make
one consumer, a broker that lost its user gets it back, a deleted agent leaves nothing on
the broker, and a broker that cannot be reached leaves nothing in the database."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rest_framework.authtoken.models import Token

from marketplace.models import EventConsumer
from tests.kit.real_broker import management
from tests.kit.stomp_agent import can_log_in, receive_as_agent
from tests.marketplace.consumers.management import register_queue_url

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

CONCURRENT_CALLS = 20


@pytest.fixture
def live(real_postgres, consumer_broker_cleanup) -> None:
    """The real PostgreSQL and RabbitMQ, cleaned up after the test."""


def test_concurrent_register_queue_calls_make_one_consumer_and_one_queue(
    live_server, transactional_db, live, identity, owner, settings
):
    # given an agent whose calls are not throttled
    settings.AGENT_WRITE_THROTTLE_RATE = ""
    token = Token.objects.get(user=owner).key
    barrier = threading.Barrier(CONCURRENT_CALLS)

    def post(_: int) -> tuple[int, str]:
        barrier.wait(timeout=30)
        response = requests.post(
            f"{live_server.url}{register_queue_url(identity)}",
            json={"object_types": ["order"]},
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        return response.status_code, response.json()["queue_name"]

    # when the agent's registration is repeated concurrently
    with ThreadPoolExecutor(max_workers=CONCURRENT_CALLS) as pool:
        answers = list(pool.map(post, range(CONCURRENT_CALLS)))

    # then one call created the consumer, the others found it, and one queue exists
    codes = [code for code, _ in answers]
    assert codes.count(201) == 1
    assert codes.count(200) == CONCURRENT_CALLS - 1
    consumer = EventConsumer.objects.get()
    assert {queue for _, queue in answers} == {consumer.queue_name}
    queues = management("GET", f"queues/{owner.uuid.hex}").json()
    assert [queue["name"] for queue in queues] == [consumer.queue_name]


def test_register_queue_recreates_a_broker_user_that_was_deleted(
    live, identity, owner, owner_client
):
    # given a registered consumer whose broker user has gone
    assert owner_client.post(register_queue_url(identity), {}, format="json").status_code == 201
    consumer = EventConsumer.objects.select_related("user").get()
    token = Token.objects.get(user=owner).key
    management("DELETE", f"users/{consumer.rmq_username}")
    assert not can_log_in(vhost=consumer.vhost, login=consumer.rmq_username, passcode=token)

    # when the agent registers again
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then the same user is back, with its permission, and consumes its queue
    assert response.status_code == 200
    assert response.json()["rmq_username"] == consumer.rmq_username
    permissions = management("GET", f"permissions/{consumer.vhost}/{consumer.rmq_username}")
    assert permissions.status_code == 200
    assert permissions.json()["read"] == f"^consumer_{consumer.uuid.hex}$"
    received = receive_as_agent(
        vhost=consumer.vhost,
        login=consumer.rmq_username,
        passcode=token,
        queue_name=consumer.queue_name,
        payload='{"back": 1}',
    )
    assert received == ['{"back": 1}']


def test_register_queue_redeclares_a_queue_that_was_deleted(live, identity, owner_client):
    # given a registered consumer whose queue has gone
    assert owner_client.post(register_queue_url(identity), {}, format="json").status_code == 201
    consumer = EventConsumer.objects.select_related("user").get()
    management("DELETE", f"queues/{consumer.vhost}/{consumer.queue_name}")

    # when the agent registers again (1.0.8 does on NOT_FOUND)
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then the queue is back
    assert response.status_code == 200
    assert management("GET", f"queues/{consumer.vhost}/{consumer.queue_name}").status_code == 200


def test_deleting_the_agent_removes_its_broker_user_and_queue(live, identity, owner_client):
    # given a registered consumer
    assert owner_client.post(register_queue_url(identity), {}, format="json").status_code == 201
    consumer = EventConsumer.objects.select_related("user").get()

    # when the agent is deleted
    response = owner_client.delete(f"/api/marketplace-site-agent-identities/{identity.uuid.hex}/")

    # then neither its broker user nor its queue remains
    assert response.status_code == 204
    assert management("GET", f"users/{consumer.rmq_username}").status_code == 404
    assert management("GET", f"queues/{consumer.vhost}/{consumer.queue_name}").status_code == 404


def test_register_queue_answers_503_and_writes_nothing_when_the_broker_port_is_closed(
    real_postgres, settings, identity, owner_client
):
    # given a management URL where nothing listens
    settings.RABBITMQ_MANAGEMENT_URL = "http://127.0.0.1:9"

    # when
    response = owner_client.post(register_queue_url(identity), {}, format="json")

    # then a 503 in DRF's shape, and no consumer row
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert EventConsumer.objects.count() == 0
