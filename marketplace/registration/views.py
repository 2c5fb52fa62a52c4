"""The site-agent write path and its read endpoints, upstream-compatible.

Handlers validate, call one service or selector, and serialize. Object routes answer 403
(not 404) to users who may not manage the object, as the design's role rules say.
"""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from agentstats.api.permissions import is_global_reader
from agentstats.api.serializers import ErrorOutputSerializer
from agentstats.api.throttling import AgentWriteThrottle
from agentstats.api.validation import validated_input
from agentstats.models import User
from marketplace.access import (
    can_manage_offering_agents,
    can_register_identity,
    find_offering,
    identity_of_object,
    is_agent_principal,
    list_visible_identities,
    list_visible_processors,
    list_visible_services,
)
from marketplace.envelope.selectors import list_connection_events
from marketplace.envelope.serializers import ConnectionEventOutputSerializer
from marketplace.envelope.services import touch_agent_last_seen
from marketplace.models import (
    AgentIdentity,
    AgentProcessor,
    AgentService,
    Offering,
)
from marketplace.registration.consumer_serializers import (
    AgentQueueRegistrationInputSerializer,
    AgentQueueRegistrationOutputSerializer,
)
from marketplace.registration.consumers import describe_consumer_caller, register_event_consumer
from marketplace.registration.permissions import IsAgentManagerOrReader
from marketplace.registration.serializers import (
    AgentEventSubscriptionInputSerializer,
    AgentIdentityInputSerializer,
    AgentIdentityListQuerySerializer,
    AgentIdentityOutputSerializer,
    AgentProcessorInputSerializer,
    AgentProcessorOutputSerializer,
    AgentServiceInputSerializer,
    AgentServiceListQuerySerializer,
    AgentServiceOutputSerializer,
    AgentServiceStatisticsInputSerializer,
    EventSubscriptionOutputSerializer,
    UserOutputSerializer,
)
from marketplace.registration.services import (
    AgentIdentityFields,
    delete_agent_identity,
    register_agent_identity,
    register_agent_processor,
    register_agent_service,
    register_event_subscription,
    set_agent_service_statistics,
    update_agent_identity,
)
from rmq.client import ManagementClient

# Upstream addresses objects by uuid hex; dashed uuids work too.
UUID_PATH_PATTERN = r"[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}"

BROKER_UNAVAILABLE_RESPONSE = OpenApiResponse(
    ErrorOutputSerializer,
    description='The broker could not be reached (code "broker_unavailable"); nothing was '
    "written, so a retry converges.",
)

QUEUE_OWNED_ELSEWHERE_RESPONSE = OpenApiResponse(
    ErrorOutputSerializer,
    description="Another user registered this agent's queue (code "
    '"queue_registered_by_another_user"); nothing was written.',
)


def creation_status(created: bool) -> int:
    """201 for a new object, 200 for one that was there (registrations repeat)."""
    return status.HTTP_201_CREATED if created else status.HTTP_200_OK


class AgentObjectViewSet(viewsets.GenericViewSet):
    """Shared lookup and permission rules of the agent endpoints."""

    lookup_field = "uuid"
    lookup_value_regex = UUID_PATH_PATTERN
    permission_classes = [IsAgentManagerOrReader]
    throttle_classes = [AgentWriteThrottle]

    def visible_queryset(self, user: User) -> QuerySet[Any]:
        raise NotImplementedError

    def all_objects(self) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        if self.action == "list":
            return self.visible_queryset(self.request.user)  # type: ignore[arg-type]
        return self.all_objects()

    def get_object(self) -> Any:
        instance = super().get_object()
        if self.request.method not in SAFE_METHODS:
            self.note_agent_call(identity_of_object(instance))
        return instance

    def note_agent_call(self, identity: AgentIdentity | None) -> None:
        """Refresh the agent's last_seen once the write succeeds, when the caller is the
        agent, not staff acting (finalize_response does it)."""
        self.agent_called = identity

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # A refused or failed write is no sign of a working agent; a deleted one is gone.
        identity = getattr(self, "agent_called", None)
        if (
            identity is not None
            and response.status_code < status.HTTP_400_BAD_REQUEST
            and self.action != "destroy"
            and is_agent_principal(request.user, identity)  # type: ignore[arg-type]
        ):
            touch_agent_last_seen(identity, at=timezone.now())
        return super().finalize_response(request, response, *args, **kwargs)

    def respond(self, instance: Any, serializer_class: type, code: int = 200) -> Response:
        serializer = serializer_class(instance, context=self.get_serializer_context())
        return Response(serializer.data, status=code)

    def resolve_offering(self, offering_uuid: UUID, *, field: str) -> Offering:
        offering = find_offering(offering_uuid)
        if offering is None:
            raise ValidationError({field: ["Offering not found."]})
        return offering

    def resolve_target_offering(self, identity: AgentIdentity, offering_uuid: UUID) -> Offering:
        """The offering a PUT/PATCH names; moving an agent needs rights on the new one."""
        offering = self.resolve_offering(offering_uuid, field="offering")
        user = self.request.user
        if offering != identity.offering and not can_manage_offering_agents(
            user,  # type: ignore[arg-type]
            offering,
        ):
            raise PermissionDenied("You do not manage the agents of this offering.")
        return offering


@extend_schema(tags=["marketplace-site-agent-identities"])
class AgentIdentityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet):
    serializer_class = AgentIdentityOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[AgentIdentity]:
        query = validated_input(AgentIdentityListQuerySerializer, self.request.query_params)
        queryset = list_visible_identities(user)
        if "name" in query:
            queryset = queryset.filter(name=query["name"])
        if "offering_uuid" in query:
            queryset = queryset.filter(offering__uuid=query["offering_uuid"])
        return queryset

    def all_objects(self) -> QuerySet[AgentIdentity]:
        return AgentIdentity.objects.select_related("offering__customer", "created_by")

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="Exact agent name."),
            OpenApiParameter("offering_uuid", str, description="Offering uuid."),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AgentIdentityInputSerializer, responses={201: AgentIdentityOutputSerializer}
    )
    def create(self, request: Request) -> Response:
        """Register an agent; the same name on the same offering updates it (idempotent)."""
        data = validated_input(AgentIdentityInputSerializer, request.data)
        offering = self.resolve_offering(data["offering"], field="offering")
        if not can_register_identity(request.user, offering, name=data["name"]):  # type: ignore[arg-type]
            raise PermissionDenied("You do not manage the agents of this offering.")
        identity, _ = register_agent_identity(
            offering,
            actor=request.user,  # type: ignore[arg-type]
            fields=AgentIdentityFields.from_validated(data),
        )
        self.note_agent_call(identity)
        # The SDK accepts only 201 here, also when a concurrent registration won the race.
        return self.respond(identity, AgentIdentityOutputSerializer, status.HTTP_201_CREATED)

    @extend_schema(request=AgentIdentityInputSerializer)
    def update(self, request: Request, uuid: str) -> Response:
        identity = self.get_object()
        data = validated_input(AgentIdentityInputSerializer, request.data)
        offering = self.resolve_target_offering(identity, data["offering"])
        identity = update_agent_identity(
            identity,
            offering=offering,
            fields=AgentIdentityFields.from_validated(data),
        )
        return self.respond(identity, AgentIdentityOutputSerializer)

    @extend_schema(request=AgentIdentityInputSerializer)
    def partial_update(self, request: Request, uuid: str) -> Response:
        identity = self.get_object()
        given = validated_input(AgentIdentityInputSerializer, request.data, partial=True)
        offering = (
            self.resolve_target_offering(identity, given["offering"])
            if "offering" in given
            else identity.offering
        )
        fields = AgentIdentityFields.from_identity(identity).merged(given)
        identity = update_agent_identity(identity, offering=offering, fields=fields)
        return self.respond(identity, AgentIdentityOutputSerializer)

    @extend_schema(responses={204: None, 503: BROKER_UNAVAILABLE_RESPONSE})
    def destroy(self, request: Request, uuid: str) -> Response:
        delete_agent_identity(self.get_object(), broker=ManagementClient.from_settings())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=AgentServiceInputSerializer,
        responses={200: AgentServiceOutputSerializer, 201: AgentServiceOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def register_service(self, request: Request, uuid: str) -> Response:
        """Register a service of this agent (idempotent by name); it becomes Active."""
        identity = self.get_object()
        data = validated_input(AgentServiceInputSerializer, request.data)
        service, created = register_agent_service(
            identity, name=data["name"], mode=data.get("mode") or ""
        )
        return self.respond(service, AgentServiceOutputSerializer, creation_status(created))

    @extend_schema(
        request=AgentEventSubscriptionInputSerializer,
        responses={
            200: EventSubscriptionOutputSerializer,
            201: EventSubscriptionOutputSerializer,
            503: BROKER_UNAVAILABLE_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"])
    def register_event_subscription(self, request: Request, uuid: str) -> Response:
        """Get or create this agent's subscription for one object type, and its broker user."""
        identity = self.get_object()
        data = validated_input(AgentEventSubscriptionInputSerializer, request.data)
        subscription, created = register_event_subscription(
            identity,
            owner=request.user,  # type: ignore[arg-type]
            object_type=data["observable_object_type"],
            description=data.get("description", ""),
            source_ip=request.META.get("REMOTE_ADDR"),
            broker=ManagementClient.from_settings(),
        )
        return self.respond(
            subscription, EventSubscriptionOutputSerializer, creation_status(created)
        )

    @extend_schema(
        request=AgentQueueRegistrationInputSerializer,
        responses={
            200: AgentQueueRegistrationOutputSerializer,
            201: AgentQueueRegistrationOutputSerializer,
            409: QUEUE_OWNED_ELSEWHERE_RESPONSE,
            503: BROKER_UNAVAILABLE_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"])
    def register_queue(self, request: Request, uuid: str) -> Response:
        """Register a unified event-consumer queue for this agent identity: one durable
        RabbitMQ queue for every event type it asks for (201), or the one it has (200)."""
        identity = self.get_object()
        data = validated_input(AgentQueueRegistrationInputSerializer, request.data)
        caller = describe_consumer_caller(
            request.user,  # type: ignore[arg-type]
            identity,
            authenticator=request.successful_authenticator,
        )
        if caller is None:
            raise PermissionDenied("You do not manage this agent.")
        consumer, created = register_event_consumer(
            identity,
            caller=caller,
            object_types=data.get("object_types"),
            broker=ManagementClient.from_settings(),
        )
        return self.respond(
            consumer, AgentQueueRegistrationOutputSerializer, creation_status(created)
        )

    @extend_schema(responses={200: ConnectionEventOutputSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def connection_events(self, request: Request, uuid: str) -> Response:
        """The agent's durable connect/disconnect timeline, newest first (paginated)."""
        events = list_connection_events(self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(ConnectionEventOutputSerializer(page, many=True).data)


@extend_schema(tags=["marketplace-site-agent-services"])
class AgentServiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet):
    serializer_class = AgentServiceOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[AgentService]:
        query = validated_input(AgentServiceListQuerySerializer, self.request.query_params)
        queryset = list_visible_services(user)
        if "identity_uuid" in query:
            queryset = queryset.filter(identity__uuid=query["identity_uuid"])
        return queryset

    def all_objects(self) -> QuerySet[AgentService]:
        return AgentService.objects.select_related("identity__offering__customer")

    @extend_schema(
        parameters=[OpenApiParameter("identity_uuid", str, description="Agent identity uuid.")]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AgentProcessorInputSerializer,
        responses={200: AgentProcessorOutputSerializer, 201: AgentProcessorOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def register_processor(self, request: Request, uuid: str) -> Response:
        """Register a processor of this service (idempotent by name)."""
        service = self.get_object()
        data = validated_input(AgentProcessorInputSerializer, request.data)
        processor, created = register_agent_processor(
            service,
            name=data["name"],
            backend_type=data["backend_type"],
            backend_version=data.get("backend_version") or "",
        )
        return self.respond(processor, AgentProcessorOutputSerializer, creation_status(created))

    @extend_schema(
        request=AgentServiceStatisticsInputSerializer, responses={200: AgentServiceOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def set_statistics(self, request: Request, uuid: str) -> Response:
        """Replace the statistics the agent reports for this service."""
        service = self.get_object()
        data = validated_input(AgentServiceStatisticsInputSerializer, request.data)
        service = set_agent_service_statistics(service, statistics=data["statistics"])
        return self.respond(service, AgentServiceOutputSerializer)


@extend_schema(tags=["marketplace-site-agent-processors"])
class AgentProcessorViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet):
    serializer_class = AgentProcessorOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[AgentProcessor]:
        return list_visible_processors(user)

    def all_objects(self) -> QuerySet[AgentProcessor]:
        return AgentProcessor.objects.select_related("service__identity__offering__customer")


@extend_schema(tags=["users"])
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet):
    serializer_class = UserOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[User]:
        if is_global_reader(user):
            return User.objects.all()
        return User.objects.filter(pk=user.pk)

    def all_objects(self) -> QuerySet[User]:
        return User.objects.all()
