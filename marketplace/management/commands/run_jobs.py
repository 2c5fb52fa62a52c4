"""Run only the background job scheduler, for deployments that keep it apart from the
connection observer (which runs it too)."""

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from marketplace.jobs.scheduler import build_scheduler, scheduled_names


class Command(BaseCommand):
    help = "Run the background jobs, each once per period across every running scheduler."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        scheduler = build_scheduler()
        scheduler.start()
        self.stdout.write(
            f"Running jobs: {', '.join(scheduled_names(scheduler))} (Ctrl-C to stop)."
        )
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            scheduler.shutdown(wait=True)
        self.stdout.write("Jobs stopped.")
