"""Revoke stale broker credentials once (the job engine runs the same sweep every 30 s)."""

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from marketplace.registration.revocation import run_revoke_broker_credentials


class Command(BaseCommand):
    help = (
        "Delete or re-key the broker users of event subscriptions and consumers whose owner "
        "lost its rights, was deactivated or rotated its API token; print the counts as JSON."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = run_revoke_broker_credentials(now=timezone.now())
        self.stdout.write(json.dumps(counts, sort_keys=True))
