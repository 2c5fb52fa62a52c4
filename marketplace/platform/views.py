"""The agent's reads: version, the caller, its provider offering, its service provider.

Each answers 200 to what waldur-site-agent asks (trailing slashes, `?field=` narrowing,
dashed or hex uuids); an offering the caller may not see is a 404, like a missing one.
"""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentstats.api.validation import validated_input
from agentstats.models import User
from marketplace.models import Customer
from marketplace.platform.selectors import (
    find_visible_offering,
    list_visible_service_providers,
    read_service_version,
)
from marketplace.platform.serializers import (
    ProviderOfferingOutputSerializer,
    ServiceProviderListQuerySerializer,
    ServiceProviderOutputSerializer,
    UserMeOutputSerializer,
    VersionOutputSerializer,
    parse_requested_fields,
)

FIELD_PARAMETER = OpenApiParameter(
    "field",
    str,
    many=True,
    explode=True,
    description="Answer only these keys (repeat it, or separate names with commas); names "
    "that are not keys select nothing.",
)


def narrowing_context(request: Request) -> dict[str, Any]:
    """Serializer context with the keys the request's `?field=` asks for."""
    return {
        "request": request,
        "requested_fields": parse_requested_fields(request.query_params.getlist("field")),
    }


class VersionView(APIView):
    """This service's version. Public: it names only the open-source release; a token
    that is sent must still be valid."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="version_retrieve", responses={200: VersionOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(VersionOutputSerializer({"version": read_service_version()}).data)


class CurrentUserView(APIView):
    """The caller, with the customers it owns as `permissions`."""

    @extend_schema(
        operation_id="users_me_retrieve",
        parameters=[FIELD_PARAMETER],
        responses={200: UserMeOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        serializer = UserMeOutputSerializer(request.user, context=narrowing_context(request))
        return Response(serializer.data)


class ProviderOfferingDetailView(APIView):
    """One offering as its provider sees it: components, partitions, plugin options."""

    @extend_schema(
        operation_id="marketplace_provider_offerings_retrieve",
        parameters=[
            OpenApiParameter(
                "uuid", str, OpenApiParameter.PATH, description="Offering uuid, hex or dashed."
            ),
            FIELD_PARAMETER,
        ],
        responses={200: ProviderOfferingOutputSerializer},
    )
    def get(self, request: Request, uuid: str) -> Response:
        offering = find_visible_offering(request.user, parse_path_uuid(uuid))  # type: ignore[arg-type]
        if offering is None:
            raise NotFound()
        serializer = ProviderOfferingOutputSerializer(offering, context=narrowing_context(request))
        return Response(serializer.data)


class ServiceProviderListView(ListAPIView):
    """Service providers the caller may see: the customers of the offerings it may see."""

    serializer_class = ServiceProviderOutputSerializer

    @extend_schema(
        operation_id="marketplace_service_providers_list",
        parameters=[ServiceProviderListQuerySerializer, FIELD_PARAMETER],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Customer]:
        query = validated_input(ServiceProviderListQuerySerializer, self.request.query_params)
        user: User = self.request.user  # type: ignore[assignment]
        return list_visible_service_providers(user, customer_uuid=query.get("customer_uuid"))

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **narrowing_context(self.request)}


def parse_path_uuid(value: str) -> UUID:
    """A uuid from a path segment (hex or dashed); anything else is the API's 404."""
    try:
        return UUID(value)
    except ValueError as exc:
        raise NotFound() from exc
