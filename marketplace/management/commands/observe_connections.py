"""Run the connection observer (RabbitMQ's event exchange -> agents' connection state);
it also prunes agent log lines older than AGENT_LOG_RETENTION_DAYS."""

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from marketplace.agent_logs.services import AgentLogPruneSchedule
from marketplace.envelope.observer import ConnectionObserver


class Command(BaseCommand):
    help = "Watch RabbitMQ connections and keep agents' connection state and timeline current."

    def handle(self, *args: Any, **options: Any) -> None:
        observer = ConnectionObserver(periodic_jobs=[AgentLogPruneSchedule()])

        def request_stop(signum: int, frame: FrameType | None) -> None:
            observer.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write("Observing broker connections (Ctrl-C to stop).")
        observer.run()
        self.stdout.write("Observer stopped.")
