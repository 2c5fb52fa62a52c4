"""The connection observer: keeps every agent's broker connections and timeline current.

One observer process is active at a time: it holds the lease in the ObserverStatus row
and renews it on every beat (a conditional UPDATE); the others stand by, polling every
OBSERVER_STANDBY_POLL_SECONDS for a lease that expired or was released, and take it with
a compare-and-set. An active observer whose renewal fails (another took the lease, or the
database failed) steps down at once: it closes its event stream and stands by again. A
clean stop gives the lease up, so a standby takes over at its next poll.

The active one binds a private queue to RabbitMQ's event exchange first, renews the lease,
then reconciles once from a management-API snapshot (so what happened while no observer
was active is corrected; its writes begin by renewing the lease in their transaction, so
a snapshot fetched after the lease was lost is never written), then applies
connection.created/closed events as they come, beating every OBSERVER_HEARTBEAT_SECONDS.
The periodic re-reconcile is a background job (reconcile_connections), so replicas do not
all do it. When the broker is unreachable the active observer keeps beating with
is_broker_available=False and retries with backoff, so envelopes say "broker
unavailable" rather than "agents offline".
"""

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from marketplace.envelope.services import (
    ObserverLeaseLost,
    acquire_observer_lease,
    reconcile_broker_connections,
    record_connection_closed,
    record_connection_opened,
    record_observer_beat,
    release_observer_lease,
)
from rmq.client import ManagementClient
from rmq.clock import current_clock
from rmq.events import ConnectionClosed, ConnectionEventStream, ConnectionOpened
from rmq.exceptions import BrokerError
from rmq.snapshot import fetch_broker_snapshot

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


def new_lease_holder() -> str:
    """This process's name as a lease holder: host:pid and a random suffix (a pid can
    come back after a restart, in a container nearly always)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class ConnectionObserver:
    """Run until `stop` is set: stand by until this process holds the observer lease,
    then observe while renewing it on every beat."""

    def __init__(
        self,
        *,
        stream_factory: Callable[[], ConnectionEventStream] | None = None,
        stop: threading.Event | None = None,
        holder: str | None = None,
    ) -> None:
        self.stop = stop or threading.Event()
        self.holder = holder or new_lease_holder()
        self.stream_factory = stream_factory or (
            lambda: ConnectionEventStream(
                settings.RABBITMQ_AMQP_URLS,
                connect_timeout=settings.RABBITMQ_CONNECT_TIMEOUT,
                node_down_seconds=settings.RABBITMQ_NODE_DOWN_SECONDS,
            )
        )

    def run(self) -> None:
        """Stand by or observe until stopped; give the lease up on the way out."""
        try:
            while not self.stop.is_set():
                self._serve_one_term()
                self.stop.wait(settings.OBSERVER_STANDBY_POLL_SECONDS)
        finally:
            self._release()

    def _serve_one_term(self) -> None:
        """Take the lease if it is free and observe until it is lost or the stop."""
        try:
            if not acquire_observer_lease(self.holder):
                return
            logger.info("observer %s is active", self.holder)
            self._observe_while_leading()
        except ObserverLeaseLost as exc:
            logger.warning("observer steps down: %s", exc)
        except DatabaseError as exc:
            # Without the database no lease can be renewed or taken: stand by and retry.
            logger.warning("observer %s stands by, the database failed: %s", self.holder, exc)
        finally:
            close_old_connections()

    def _observe_while_leading(self) -> None:
        """Observe, reconnecting after broker failures; ObserverLeaseLost ends it."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                self._observe_once()
                backoff = 1.0
            except BrokerError as exc:
                logger.warning("observer cannot reach the broker: %s", exc)
                self._beat(is_broker_available=False, error=str(exc))
                self._wait_beating(backoff, error=str(exc))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                close_old_connections()

    def _observe_once(self) -> None:
        stream = self.stream_factory()
        stream.open()
        try:
            # Renewed once the stream is open (opening may have taken a while on a cluster
            # of failing nodes), and again within the reconcile's writes.
            self._beat(is_broker_available=True)
            self.reconcile()
            while not self.stop.is_set():
                events = stream.drain(seconds=settings.OBSERVER_HEARTBEAT_SECONDS)
                # Renewed before the events are written: a process that lost the lease
                # while it waited writes nothing (its successor reconciled instead).
                self._beat(is_broker_available=True)
                for event in events:
                    apply_connection_event(event)
        finally:
            stream.close()

    def reconcile(self) -> None:
        """Make the recorded connections match one management-API snapshot, writing only
        while this process still holds the lease (ObserverLeaseLost otherwise)."""
        reconcile_connections(
            before_writes=lambda: self._beat(is_broker_available=True, is_reconciled=True)
        )

    def _beat(
        self, *, is_broker_available: bool, error: str = "", is_reconciled: bool = False
    ) -> None:
        record_observer_beat(
            holder=self.holder,
            is_broker_available=is_broker_available,
            error=error,
            is_reconciled=is_reconciled,
            at=current_clock().now(),
        )

    def _wait_beating(self, seconds: float, *, error: str) -> None:
        """Wait out a backoff, renewing the lease every beat (a backoff can outlast it)."""
        left = seconds
        while left > 0:
            step = min(settings.OBSERVER_HEARTBEAT_SECONDS, left)
            if self.stop.wait(step):
                return
            left -= step
            self._beat(is_broker_available=False, error=error)

    def _release(self) -> None:
        try:
            release_observer_lease(self.holder)
        except DatabaseError as exc:
            logger.warning("observer could not give the lease up (it expires): %s", exc)
        finally:
            close_old_connections()


def reconcile_connections(*, before_writes: Callable[[], None] | None = None) -> int:
    """Make the recorded connections match one management-API snapshot; return how many
    connections the broker listed.

    `before_writes` runs first in the writes' transaction: the observer renews its lease
    there, so a fetch that outlasted the lease writes nothing (its error rolls back), and
    a standby's takeover waits for the row until the writes are committed.
    """
    snapshot = fetch_broker_snapshot(ManagementClient.from_settings())
    with transaction.atomic():
        if before_writes is not None:
            before_writes()
        reconcile_broker_connections(snapshot.connections, at=snapshot.taken_at)
    return len(snapshot.connections)


def apply_connection_event(event: ConnectionOpened | ConnectionClosed) -> None:
    """Record one broker event (events of connections that are not agents' are ignored)."""
    if isinstance(event, ConnectionOpened):
        record_connection_opened(event)
    else:
        record_connection_closed(event)
