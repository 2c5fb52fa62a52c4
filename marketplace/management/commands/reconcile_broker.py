"""Reconcile the broker with the database once: re-declare lost queues, and remove what no
row explains once BROKER_ORPHAN_GRACE_SECONDS have passed (exit 3 when the broker cannot
be asked)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from marketplace.registration.housekeeping import run_reconcile_broker
from rmq.clock import current_clock
from rmq.exceptions import BrokerError

EXIT_BROKER_UNAVAILABLE = 3


class Command(BaseCommand):
    help = (
        "Bring the service's own vhosts in line with the database: declare the queues rows "
        "name, remove queues, users and vhosts no row explains after the grace period."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Write nothing (broker or database); print what a run would do now.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = run_reconcile_broker(now=current_clock().now(), dry_run=options["dry_run"])
        except BrokerError as exc:
            raise CommandError(
                f"The broker cannot be asked: {exc}", returncode=EXIT_BROKER_UNAVAILABLE
            ) from exc
        prefix = "Would do (dry run): " if options["dry_run"] else ""
        self.stdout.write(prefix + ", ".join(f"{key} {value}" for key, value in counts.items()))
