"""The connection-stats endpoint: one trustworthy picture of the fleet."""

from uuid import UUID

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentstats.api.permissions import IsStaffOrSupport
from agentstats.api.serializers import ErrorOutputSerializer
from marketplace.stats.answers import (
    fetch_connection_report,
    fetch_connection_stats_data,
    fetch_connection_stats_json,
)
from marketplace.stats.rendering import render_agent
from marketplace.stats.selectors import AgentFilters, is_known_agent
from marketplace.stats.serializers import (
    AgentConnectionOutputSerializer,
    ConnectionStatsOutputSerializer,
    ConnectionStatsQuerySerializer,
)
from rmq.client import ManagementClient
from rmq.snapshot_cache import SnapshotWait


class ConnectionStatsView(APIView):
    """Every agent with its services, subscriptions, live connections and queues."""

    permission_classes = [IsStaffOrSupport]

    @extend_schema(
        operation_id="marketplace_site_agent_connection_stats_retrieve",
        tags=["marketplace-site-agent-connection-stats"],
        parameters=[
            ConnectionStatsQuerySerializer,
            OpenApiParameter(
                "Server-Timing",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description='How long the answer waited for the broker: `broker;desc="fetched"'
                ';dur=<ms>` (this request asked it), `desc="waited"` (another request was '
                'asking), `desc="shared"` (a fresh snapshot was cached), or `answer;desc='
                '"shared"` (the whole answer was shared, BROKER_SNAPSHOT_TTL).',
            ),
        ],
        responses={
            200: ConnectionStatsOutputSerializer,
            400: OpenApiResponse(description="An invalid filter value (field errors)."),
            503: OpenApiResponse(
                ErrorOutputSerializer,
                description="The broker cannot be asked (refused, timed out, failed, rejected "
                'the credentials, or answered garbage): code "broker_unavailable".',
            ),
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = ConnectionStatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters, broker = query.to_filters(), ManagementClient.from_settings()
        if not isinstance(request.accepted_renderer, JSONRenderer):
            # The browsable API renders the data itself.
            return Response(fetch_connection_stats_data(filters, broker=broker))
        answer = fetch_connection_stats_json(filters, broker=broker)
        response = HttpResponse(answer.body, content_type="application/json")
        response["Server-Timing"] = describe_server_timing(answer.snapshot_wait)
        return response


def describe_server_timing(wait: SnapshotWait | None) -> str:
    """Server-Timing: how long this answer waited for the broker, and why.

    `broker;desc="fetched|waited|shared";dur=<ms>`, or `answer;desc="shared"` when the
    whole answer was shared and the broker was not involved.
    """
    if wait is None:
        return 'answer;desc="shared"'
    return f'broker;desc="{wait.source}";dur={wait.seconds * 1000:.1f}'


class ConnectionStatsDetailView(APIView):
    """One agent, in the list's shape, with its live connection status."""

    permission_classes = [IsStaffOrSupport]

    @extend_schema(
        operation_id="marketplace_site_agent_connection_stats_agent_retrieve",
        tags=["marketplace-site-agent-connection-stats"],
        responses={
            200: AgentConnectionOutputSerializer,
            404: OpenApiResponse(ErrorOutputSerializer, description="No such agent."),
            503: OpenApiResponse(ErrorOutputSerializer, description="The broker cannot be asked."),
        },
    )
    def get(self, request: Request, uuid: str) -> Response:
        try:
            agent_uuid = UUID(uuid)
        except ValueError as exc:
            raise NotFound("No such agent.") from exc
        if not is_known_agent(agent_uuid):
            raise NotFound("No such agent.")
        filters = AgentFilters(agent_uuid=agent_uuid)
        report = fetch_connection_report(filters, broker=ManagementClient.from_settings())
        if not report.agents:
            raise NotFound("No such agent.")
        return Response(render_agent(report.agents[0]))
