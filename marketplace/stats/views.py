"""The connection-stats endpoint: one trustworthy picture of the fleet."""

import time
from uuid import UUID

from django.http import HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentstats.api.permissions import IsStaffOrSupport
from agentstats.api.serializers import ErrorOutputSerializer
from marketplace.stats.answers import (
    StatsAnswer,
    fetch_connection_report,
    fetch_connection_stats_answer,
    fetch_connection_stats_data,
)
from marketplace.stats.rendering import format_time, render_agent
from marketplace.stats.selectors import AgentFilters, is_known_agent
from marketplace.stats.serializers import (
    AgentConnectionOutputSerializer,
    ConnectionStatsOutputSerializer,
    ConnectionStatsQuerySerializer,
)
from rmq.client import ManagementClient
from rmq.clock import current_clock


class ConnectionStatsView(APIView):
    """Every agent with its services, subscriptions, live connections and queues."""

    permission_classes = [IsStaffOrSupport]

    @extend_schema(
        operation_id="marketplace_site_agent_connection_stats_retrieve",
        tags=["marketplace-site-agent-connection-stats"],
        parameters=[
            ConnectionStatsQuerySerializer,
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="An ETag of an earlier answer: 304 when the fleet's picture is "
                "the same (the ETag leaves out summary.snapshot_taken_at).",
            ),
            OpenApiParameter(
                "ETag",
                str,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="Names the fleet's picture, summary.snapshot_taken_at left out.",
            ),
            OpenApiParameter(
                "X-Snapshot-Taken-At",
                str,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="When the broker snapshot was taken (summary.snapshot_taken_at).",
            ),
            OpenApiParameter(
                "X-Snapshot-Age",
                str,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="The snapshot's age in seconds when the answer was sent, at most "
                "BROKER_SNAPSHOT_MAX_AGE.",
            ),
            OpenApiParameter(
                "Server-Timing",
                str,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description='How the answer got its broker snapshot: `broker;desc="shared"'
                ';dur=<ms>` (younger than BROKER_SNAPSHOT_TTL), `desc="stale"` (older, served '
                'while a refresh runs beside it), `desc="fetched"` (none could be served: this '
                'request started the fetch and waited for it), `desc="waited"` (it waited for '
                'another request\'s fetch); then `answer;desc="shared"` (rendered once for '
                'every poller) or `answer;desc="built";dur=<ms>` (rendered by this request).',
            ),
        ],
        responses={
            200: ConnectionStatsOutputSerializer,
            304: OpenApiResponse(description="If-None-Match names the current answer."),
            400: OpenApiResponse(description="An invalid filter value (field errors)."),
            503: OpenApiResponse(
                ErrorOutputSerializer,
                description="The broker cannot be asked (refused, timed out, failed, rejected "
                "the credentials, answered garbage, or has not answered a cold request within "
                'BROKER_SNAPSHOT_WAIT): code "broker_unavailable", with Retry-After.',
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
        started = time.monotonic()
        answer = fetch_connection_stats_answer(filters, broker=broker)
        return respond_with_answer(request, answer, seconds=time.monotonic() - started)


def respond_with_answer(request: Request, answer: StatsAnswer, *, seconds: float) -> HttpResponse:
    """The shared answer as HTTP: 304 for a matching If-None-Match, else the body gzipped
    when the client accepts it (already compressed: nothing compresses it again)."""
    response: HttpResponse
    if is_etag_matched(request.headers.get("If-None-Match", ""), answer.shared.etag):
        response = HttpResponseNotModified()
    elif accepts_gzip(request.headers.get("Accept-Encoding", "")):
        response = HttpResponse(answer.bodies.gzipped, content_type="application/json")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(answer.bodies.identity, content_type="application/json")
    taken_at = answer.shared.taken_at
    response["ETag"] = answer.shared.etag
    response["Vary"] = "Accept-Encoding"
    response["X-Snapshot-Taken-At"] = format_time(taken_at) or ""
    age = max(0.0, current_clock().time() - taken_at.timestamp())
    response["X-Snapshot-Age"] = f"{age:.3f}"
    response["Server-Timing"] = describe_server_timing(answer, seconds=seconds)
    return response


def describe_server_timing(answer: StatsAnswer, *, seconds: float) -> str:
    """Server-Timing: how the snapshot was got (and the wait for it), and whether this
    request rendered the answer (`broker;desc="stale";dur=0.2, answer;desc="shared"`)."""
    wait = answer.snapshot_wait
    broker = f'broker;desc="{wait.source}";dur={wait.seconds * 1000:.1f}'
    if not answer.is_built:
        return f'{broker}, answer;desc="shared"'
    rendering = max(0.0, seconds - wait.seconds)
    return f'{broker}, answer;desc="built";dur={rendering * 1000:.1f}'


def is_etag_matched(if_none_match: str, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, as for GET) or is `*`."""
    if if_none_match.strip() == "*":
        return True
    return any(_opaque(tag) == _opaque(etag) for tag in parse_etags(if_none_match))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding lists gzip (or `*`) without refusing it (q=0)."""
    accepted = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=").strip() if params.strip() else "1"
        try:
            accepted[coding.strip().lower()] = float(quality) > 0
        except ValueError:
            accepted[coding.strip().lower()] = False
    return accepted.get("gzip", accepted.get("x-gzip", accepted.get("*", False)))


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


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
