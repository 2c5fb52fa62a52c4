"""POST …-services/cleanup_stale/ and …-identities/cleanup_orphaned/: staff only."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentstats.api.serializers import ErrorOutputSerializer
from agentstats.api.validation import validated_input
from marketplace.registration.cleanup import (
    CleanupResult,
    cleanup_orphaned_identities,
    cleanup_stale_services,
)
from marketplace.registration.cleanup_serializers import (
    CleanupInputSerializer,
    CleanupOutputSerializer,
)
from rmq.client import ManagementClient


class IsStaff(BasePermission):
    """Only staff users (support and owners get 403, anonymous 401)."""

    message = "Only staff users may clean up agents."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def render_cleanup(result: CleanupResult) -> Response:
    return Response(
        CleanupOutputSerializer(
            {
                "deleted_count": result.deleted_count,
                "dry_run": result.is_dry_run,
                "items": result.items,
            }
        ).data
    )


FORBIDDEN_RESPONSE = OpenApiResponse(ErrorOutputSerializer, description="Not staff.")


class CleanupStaleServicesView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="marketplace_site_agent_services_cleanup_stale",
        tags=["marketplace-site-agent-services"],
        description="Remove agent services not modified for `older_than_hours` (any "
        "state), with their processors. Staff only; `dry_run` (the default) deletes nothing.",
        request=CleanupInputSerializer,
        responses={
            200: CleanupOutputSerializer,
            400: ErrorOutputSerializer,
            403: FORBIDDEN_RESPONSE,
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated_input(CleanupInputSerializer, request.data)
        result = cleanup_stale_services(
            older_than_hours=data["older_than_hours"],
            is_dry_run=data["dry_run"],
            now=timezone.now(),
        )
        return render_cleanup(result)


class CleanupOrphanedIdentitiesView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="marketplace_site_agent_identities_cleanup_orphaned",
        tags=["marketplace-site-agent-identities"],
        description="Remove agent identities that have no service, with their broker "
        "users. Staff only; `dry_run` (the default) deletes nothing; `older_than_hours` "
        "is accepted and ignored, as upstream.",
        request=CleanupInputSerializer,
        responses={
            200: CleanupOutputSerializer,
            400: ErrorOutputSerializer,
            403: FORBIDDEN_RESPONSE,
            503: OpenApiResponse(
                ErrorOutputSerializer,
                description='The broker failed (code "broker_unavailable"): the identities '
                "not deleted before it failed are kept; the detail says how many went.",
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated_input(CleanupInputSerializer, request.data)
        result = cleanup_orphaned_identities(
            is_dry_run=data["dry_run"], broker=ManagementClient.from_settings()
        )
        return render_cleanup(result)
