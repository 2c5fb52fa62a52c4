"""The connection-stats endpoint: one trustworthy picture of the fleet."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentstats.permissions import IsStaffOrSupport
from agentstats.selectors import fetch_connection_report
from agentstats.serializers import (
    ConnectionStatsOutputSerializer,
    ConnectionStatsQuerySerializer,
    ErrorOutputSerializer,
)
from rmq.client import ManagementClient


class ConnectionStatsView(APIView):
    """Every agent with its services, subscriptions, live connections and queues."""

    permission_classes = [IsStaffOrSupport]

    @extend_schema(
        operation_id="marketplace_site_agent_connection_stats_retrieve",
        tags=["marketplace-site-agent-connection-stats"],
        parameters=[ConnectionStatsQuerySerializer],
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
    def get(self, request: Request) -> Response:
        query = ConnectionStatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = fetch_connection_report(
            query.to_filters(), broker=ManagementClient.from_settings()
        )
        return Response(ConnectionStatsOutputSerializer(report).data)
