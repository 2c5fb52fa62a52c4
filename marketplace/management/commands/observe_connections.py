"""Run the connection observer (RabbitMQ's event exchange -> agents' connection state)
and, beside it, the background job scheduler (marketplace/jobs/).

Any number may run: one observer is active (it holds the lease), the others stand by; the
scheduler runs in every process (each job's period is claimed once in the database).
SIGTERM and SIGINT stop it cleanly, giving the lease up for a standby to take."""

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from marketplace.envelope.observer import ConnectionObserver
from marketplace.jobs.scheduler import build_scheduler, scheduled_names


class Command(BaseCommand):
    help = (
        "Watch RabbitMQ connections and keep agents' connection state and timeline "
        "current; run the background jobs beside it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        observer = ConnectionObserver()
        scheduler = build_scheduler()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            observer.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        scheduler.start()
        self.stdout.write(
            f"Observer {observer.holder}: active when it holds the lease, else standing by; "
            f"jobs: {', '.join(scheduled_names(scheduler))} (Ctrl-C to stop)."
        )
        try:
            observer.run()
        finally:
            scheduler.shutdown(wait=True)
        self.stdout.write("Observer stopped.")
