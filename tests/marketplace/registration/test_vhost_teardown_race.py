"""A registration racing the deletion of its owner's last row keeps its vhost: both lock the
owner's row (the real PostgreSQL and RabbitMQ)."""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, connections

from marketplace.names import AuthKind, AuthorizedVia
from marketplace.registration.consumers import ConsumerCaller, register_event_consumer
from marketplace.registration.services import delete_event_subscription
from rmq.client import ManagementClient
from tests.factories import AgentIdentityFactory, CustomerFactory, UserFactory
from tests.kit.polling import wait_until
from tests.kit.real_broker import management, provision_agent


class PausingClient(ManagementClient):
    """The management client, held just before it deletes a vhost until released."""

    def __init__(self, paused: threading.Event, release: threading.Event) -> None:
        super().__init__(
            django_settings.RABBITMQ_MANAGEMENT_URL,
            user=django_settings.RABBITMQ_USER,
            password=django_settings.RABBITMQ_PASSWORD,
            connect_timeout=5,
            read_timeout=30,
        )
        self.paused, self.release = paused, release

    def delete(self, segments: Sequence[str]) -> None:
        if segments[0] == "vhosts":
            self.paused.set()
            assert self.release.wait(timeout=120)
        super().delete(segments)


def in_thread(pool: ThreadPoolExecutor, work: Callable[[], Any]) -> Future:
    """Run `work` on its own database connection, closed afterwards."""

    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    return pool.submit(run)


def lock_waiters() -> int:
    """How many sessions of this test database wait for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def test_a_consumer_registered_while_the_owners_last_subscription_is_deleted_keeps_its_vhost(
    transactional_db, real_postgres, real_broker
):
    # given an owner whose only row is a subscription, whose deletion is held just before
    # it deletes the (then unused) vhost
    owner = UserFactory()
    customer = CustomerFactory(owners=[owner])
    subscription, _ = provision_agent(
        AgentIdentityFactory(created_by=owner, offering__customer=customer),
        owner=owner,
        object_type="order",
    )
    other_agent = AgentIdentityFactory(created_by=owner, offering__customer=customer)
    paused, release = threading.Event(), threading.Event()
    caller = ConsumerCaller(
        user=owner, auth_kind=AuthKind.TOKEN, authorized_via=AuthorizedVia.CUSTOMER_OWNER
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        deletion = in_thread(
            pool,
            lambda: delete_event_subscription(subscription, broker=PausingClient(paused, release)),
        )
        wait_until(
            lambda: paused.is_set() or deletion.done(),
            timeout=60,
            message="the deletion did not reach the vhost",
        )
        assert paused.is_set(), deletion.result()

        # when the owner registers an event consumer meanwhile
        registration = in_thread(
            pool,
            lambda: register_event_consumer(
                other_agent,
                caller=caller,
                object_types=None,
                broker=ManagementClient.from_settings(),
            ),
        )
        wait_until(
            lambda: registration.done() or lock_waiters() > 0,
            timeout=60,
            message="the registration neither finished nor waited for a lock",
        )
        release.set()
        deletion.result(timeout=120)
        consumer, _ = registration.result(timeout=120)

    # then the registration waited for the deletion, and provisioned the vhost afterwards
    assert management("GET", f"vhosts/{owner.uuid.hex}").status_code == 200
    assert management("GET", f"queues/{owner.uuid.hex}/{consumer.queue_name}").status_code == 200
