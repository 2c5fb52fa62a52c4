"""Delete agent log lines older than AGENT_LOG_RETENTION_DAYS (the observer does it hourly)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from marketplace.agent_logs.services import PRUNE_BATCH_SIZE, prune_agent_logs


class Command(BaseCommand):
    help = "Delete agent log lines received more than AGENT_LOG_RETENTION_DAYS days ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PRUNE_BATCH_SIZE,
            help=f"Rows per DELETE statement (default {PRUNE_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        deleted = prune_agent_logs(now=timezone.now(), batch_size=options["batch_size"])
        self.stdout.write(f"Deleted {deleted} agent log lines.")
