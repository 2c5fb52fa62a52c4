"""Print the fleet's connection status; the exit code says whether every agent is connected.

Exit codes, for cron and monitoring checks: 0 every matching agent is connected (or none
matches), 1 at least one is disconnected, 2 a filter is invalid, 3 the broker cannot be
asked.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rest_framework.renderers import JSONRenderer

from marketplace.stats.answers import fetch_connection_report
from marketplace.stats.fleet_table import render_fleet_table
from marketplace.stats.merge import ConnectionReport
from marketplace.stats.rendering import render_report
from marketplace.stats.selectors import AgentFilters
from marketplace.stats.serializers import ConnectionStatsQuerySerializer
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError
from rmq.snapshot_cache import fetch_bound

EXIT_DISCONNECTED = 1
EXIT_INVALID_FILTERS = 2
EXIT_BROKER_UNAVAILABLE = 3


class Command(BaseCommand):
    help = (
        "Show every agent's broker connection, services and queued messages; exit 1 when "
        "an agent matching the filters is disconnected, 3 when the broker cannot be asked."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="The API's JSON document.")
        # The API's filters, one option each (--offering-uuid, ...), with the API's help.
        for name, field in ConnectionStatsQuerySerializer().fields.items():
            parser.add_argument(f"--{name.replace('_', '-')}", help=str(field.help_text))

    def handle(self, *args: Any, **options: Any) -> None:
        report = _fetch_report(_parse_filters(options))
        self.stdout.write(_render_report(report, as_json=options["json"]))
        summary = report.summary
        if summary.disconnected_agents:
            raise CommandError(
                f"{summary.disconnected_agents} of {summary.total_agents} matching agents "
                "are disconnected.",
                returncode=EXIT_DISCONNECTED,
            )


def _parse_filters(options: dict[str, Any]) -> AgentFilters:
    """Validate the filter options exactly as the API validates its query."""
    given = {
        key: options[key]
        for key in ConnectionStatsQuerySerializer.filter_names()
        if options[key] is not None
    }
    query = ConnectionStatsQuerySerializer(data=given)
    if not query.is_valid():
        fields = "; ".join(
            f"--{field.replace('_', '-')}: {' '.join(str(message) for message in messages)}"
            for field, messages in query.errors.items()
        )
        raise CommandError(f"Invalid filters: {fields}", returncode=EXIT_INVALID_FILTERS)
    return query.to_filters()


def _fetch_report(filters: AgentFilters) -> ConnectionReport:
    try:
        broker = ManagementClient.from_settings()
        # A one-off run has no warm snapshot to be served: it waits for the fetch.
        return fetch_connection_report(filters, broker=broker, wait_seconds=fetch_bound(broker))
    except BrokerError as exc:
        # The broker errors name the failure, never the URL or credentials.
        raise CommandError(
            f"The message broker cannot be asked: {exc}", returncode=EXIT_BROKER_UNAVAILABLE
        ) from exc


def _render_report(report: ConnectionReport, *, as_json: bool) -> str:
    if not as_json:
        return render_fleet_table(report)
    data = render_report(report)
    return JSONRenderer().render(data, renderer_context={"indent": 2}).decode()
