"""The connection observer running in a thread, as `manage.py observe_connections` runs it."""

import threading
from datetime import datetime

from django.db import connection as db_connection
from django.utils import timezone

from marketplace.envelope.observer import ConnectionObserver
from marketplace.models import ObserverStatus
from tests.kit.polling import wait_until


class ObserverThread:
    """Start it, wait for its first reconcile, stop it; every wait bounded by `wait_seconds`."""

    def __init__(self, *, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.observer = ConnectionObserver()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.observer.run()
        finally:
            db_connection.close()

    def start(self, *, since: datetime | None = None) -> None:
        """Run it and wait until it has reconciled after `since` (default: now)."""
        since = since or timezone.now()
        self.thread.start()
        wait_until(
            lambda: ObserverStatus.objects.filter(last_reconciled_at__gte=since).exists(),
            timeout=self.wait_seconds,
            message="the observer reconciled",
        )

    def stop(self) -> None:
        self.observer.stop.set()
        self.thread.join(timeout=self.wait_seconds)
        assert not self.thread.is_alive()
