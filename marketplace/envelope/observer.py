"""The connection observer: keeps every agent's broker connections and timeline current.

It binds a private queue to RabbitMQ's event exchange first, then reconciles once from a
management-API snapshot (so what happened while it was down is corrected), then applies
connection.created/closed events as they come, beating every OBSERVER_HEARTBEAT_SECONDS.
The periodic re-reconcile is a background job (reconcile_connections), so replicas do
not all do it. When the broker is unreachable the observer keeps beating with
is_broker_available=False and retries with backoff, so envelopes say "broker
unavailable" rather than "agents offline".
"""

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from marketplace.envelope.services import (
    reconcile_broker_connections,
    record_connection_closed,
    record_connection_opened,
    record_observer_beat,
)
from rmq.client import ManagementClient
from rmq.events import ConnectionClosed, ConnectionEventStream, ConnectionOpened
from rmq.exceptions import BrokerError
from rmq.snapshot import fetch_broker_snapshot

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class ConnectionObserver:
    """Run until `stop` is set; every step is bounded by the configured intervals."""

    def __init__(
        self,
        *,
        stream_factory: Callable[[], ConnectionEventStream] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop or threading.Event()
        self.stream_factory = stream_factory or (
            lambda: ConnectionEventStream(
                settings.RABBITMQ_AMQP_URL, connect_timeout=settings.RABBITMQ_CONNECT_TIMEOUT
            )
        )

    def run(self) -> None:
        """Observe until stopped, reconnecting after broker failures."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                self._observe_once()
                backoff = 1.0
            except BrokerError as exc:
                logger.warning("observer cannot reach the broker: %s", exc)
                record_observer_beat(is_broker_available=False, error=str(exc), at=timezone.now())
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                close_old_connections()

    def _observe_once(self) -> None:
        stream = self.stream_factory()
        stream.open()
        try:
            self.reconcile()
            while not self.stop.is_set():
                for event in stream.drain(seconds=settings.OBSERVER_HEARTBEAT_SECONDS):
                    apply_connection_event(event)
                record_observer_beat(is_broker_available=True, at=timezone.now())
        finally:
            stream.close()

    def reconcile(self) -> None:
        """Make the recorded connections match one management-API snapshot."""
        reconcile_connections()
        record_observer_beat(is_broker_available=True, is_reconciled=True, at=timezone.now())


def reconcile_connections() -> int:
    """Make the recorded connections match one management-API snapshot; return how many
    connections the broker listed."""
    snapshot = fetch_broker_snapshot(ManagementClient.from_settings())
    reconcile_broker_connections(snapshot.connections, at=snapshot.taken_at)
    return len(snapshot.connections)


def apply_connection_event(event: ConnectionOpened | ConnectionClosed) -> None:
    """Record one broker event (events of connections that are not agents' are ignored)."""
    if isinstance(event, ConnectionOpened):
        record_connection_opened(event)
    else:
        record_connection_closed(event)
