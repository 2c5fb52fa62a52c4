"""The connection envelope API: per-agent connection state, scoped to the caller's tenant.

An agent the caller may not see answers 404, whether or not it exists.
"""

from uuid import UUID

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from agentstats.api.permissions import is_global_reader
from agentstats.api.serializers import ErrorOutputSerializer
from agentstats.api.throttling import AgentWriteThrottle
from agentstats.api.validation import validated_input
from agentstats.models import User
from marketplace.access import can_manage_identity
from marketplace.envelope.connection_stats import count_connection_stats, narrow_to_agent_type
from marketplace.envelope.connection_stats_serializers import (
    ConnectionStatsInputSerializer,
    ConnectionStatsResponseSerializer,
)
from marketplace.envelope.selectors import build_connection_envelope, list_scoped_identities
from marketplace.envelope.serializers import (
    ConnectionEnvelopeResponseSerializer,
    ConnectionLookupInputSerializer,
    DispatchInputSerializer,
    HeartbeatInputSerializer,
)
from marketplace.envelope.services import record_agent_dispatch, record_agent_heartbeat
from marketplace.models import AgentIdentity

NOT_FOUND = OpenApiResponse(ErrorOutputSerializer, description="No such agent in your scope.")


@extend_schema(tags=["agents"])
class AgentConnectionViewSet(viewsets.ViewSet):
    """Read and record an agent's connection state."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AgentWriteThrottle]

    @extend_schema(
        request=ConnectionLookupInputSerializer,
        responses={200: ConnectionEnvelopeResponseSerializer, 404: NOT_FOUND},
    )
    @action(detail=False, methods=["post"])
    def get_connection(self, request: Request) -> Response:
        """One agent's connection envelope, served from the database."""
        data = validated_input(ConnectionLookupInputSerializer, request.data)
        identity = _find_in_scope(request.user, data["instance_id"], data.get("tenant_id"))  # type: ignore[arg-type]
        envelope = build_connection_envelope(identity, now=timezone.now())
        body = ConnectionEnvelopeResponseSerializer({"ok": True, "connection": envelope})
        return Response(body.data)

    @extend_schema(
        request=ConnectionStatsInputSerializer,
        responses={200: ConnectionStatsResponseSerializer},
    )
    @action(detail=False, methods=["post"])
    def get_connection_stats(self, request: Request) -> Response:
        """Agents counted by deployment mode, status and transport, in the caller's scope
        (Svantic's shape)."""
        data = validated_input(ConnectionStatsInputSerializer, request.data)
        user: User = request.user  # type: ignore[assignment]
        tenant = data.get("tenant_id")
        identities = narrow_to_agent_type(
            list_scoped_identities(user, tenant_uuid=tenant), data.get("agent_type")
        )
        answer = {
            "ok": True,
            "stats": count_connection_stats(identities, now=timezone.now()),
            "tenant_id": tenant,
            "scope": "tenant" if tenant else ("global" if is_global_reader(user) else "own"),
        }
        if "agent_type" in data:
            answer["agent_type"] = data["agent_type"]
        return Response(ConnectionStatsResponseSerializer(answer).data)

    @extend_schema(request=DispatchInputSerializer, responses={204: None, 404: NOT_FOUND})
    @action(detail=False, methods=["post"])
    def record_dispatch(self, request: Request) -> Response:
        """Count one dispatch outcome of an agent (atomic in the database)."""
        data = validated_input(DispatchInputSerializer, request.data)
        identity = _find_managed(request.user, data["instance_id"])  # type: ignore[arg-type]
        record_agent_dispatch(
            identity,
            is_success=data["succeeded"],
            error=data.get("error", ""),
            at=data.get("occurred_at") or timezone.now(),
            seen_at=timezone.now(),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=HeartbeatInputSerializer, responses={204: None, 404: NOT_FOUND})
    @action(detail=False, methods=["post"])
    def record_heartbeat(self, request: Request) -> Response:
        """The agent says it is alive."""
        data = validated_input(HeartbeatInputSerializer, request.data)
        identity = _find_managed(request.user, data["instance_id"])  # type: ignore[arg-type]
        record_agent_heartbeat(identity, at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _find_in_scope(user: User, instance_id: UUID, tenant_id: UUID | None) -> AgentIdentity:
    identity = list_scoped_identities(user, tenant_uuid=tenant_id).filter(uuid=instance_id).first()
    if identity is None:
        raise NotFound("No such agent.")
    return identity


def _find_managed(user: User, instance_id: UUID) -> AgentIdentity:
    identity = _find_in_scope(user, instance_id, None)
    if not can_manage_identity(user, identity):
        raise PermissionDenied("You do not manage this agent.")
    return identity
