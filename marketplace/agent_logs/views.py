"""The agent log API: agents ship batches of lines; their managers and staff read them."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from agentstats.api.serializers import ErrorOutputSerializer
from agentstats.api.throttling import AgentWriteThrottle
from agentstats.api.validation import validated_input
from agentstats.models import User
from marketplace.agent_logs.selectors import list_agent_logs
from marketplace.agent_logs.serializers import (
    AgentLogBatchInputSerializer,
    AgentLogEntryInputSerializer,
    AgentLogListQuerySerializer,
    AgentLogOutputSerializer,
)
from marketplace.agent_logs.services import AgentLogLine, record_agent_logs
from marketplace.models import AgentLog


@extend_schema(tags=["marketplace-site-agent-logs"])
class AgentLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AgentLogOutputSerializer
    throttle_classes = [AgentWriteThrottle]

    def get_queryset(self) -> QuerySet[AgentLog]:
        filters = validated_input(AgentLogListQuerySerializer, self.request.query_params)
        user: User = self.request.user  # type: ignore[assignment]
        return list_agent_logs(user, filters=filters)

    @extend_schema(parameters=[AgentLogListQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Log lines of the agents the caller may see, newest first (paginated)."""
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AgentLogEntryInputSerializer(many=True),
        responses={
            201: AgentLogOutputSerializer(many=True),
            400: OpenApiResponse(
                description="Not a list, empty, over AGENT_LOG_BATCH_MAX entries (field "
                "errors), malformed entries (a list of field errors, one per entry, in "
                "order) or an unknown agent; nothing was stored."
            ),
            403: OpenApiResponse(
                ErrorOutputSerializer,
                description="An entry names an agent the caller sees but does not manage; "
                "nothing was stored.",
            ),
        },
    )
    def create(self, request: Request) -> Response:
        """Store a batch of the agent's log lines (a JSON array), all or none."""
        batch = AgentLogBatchInputSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        lines = [AgentLogLine.from_validated(entry) for entry in batch.validated_data]
        logs = record_agent_logs(lines, user=request.user)  # type: ignore[arg-type]
        output = AgentLogOutputSerializer(logs, many=True, context=self.get_serializer_context())
        return Response(output.data, status=status.HTTP_201_CREATED)
