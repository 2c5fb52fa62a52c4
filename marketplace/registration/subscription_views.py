"""The event subscription endpoints: their queues are declared on the broker as they are made."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agentstats.api.validation import validated_input
from agentstats.models import User
from marketplace.access import (
    find_queue_offering,
    list_visible_subscription_queues,
    list_visible_subscriptions,
)
from marketplace.models import EventSubscription, EventSubscriptionQueue
from marketplace.registration.serializers import (
    EventSubscriptionOutputSerializer,
    EventSubscriptionQueueInputSerializer,
    EventSubscriptionQueueOutputSerializer,
)
from marketplace.registration.services import create_subscription_queue, delete_event_subscription
from marketplace.registration.views import (
    BROKER_UNAVAILABLE_RESPONSE,
    AgentObjectViewSet,
    creation_status,
)
from rmq.client import ManagementClient


@extend_schema(tags=["event-subscriptions"])
class EventSubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet
):
    serializer_class = EventSubscriptionOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[EventSubscription]:
        return list_visible_subscriptions(user)

    def all_objects(self) -> QuerySet[EventSubscription]:
        return EventSubscription.objects.select_related(
            "user", "agent_identity__offering__customer"
        )

    @extend_schema(responses={204: None, 503: BROKER_UNAVAILABLE_RESPONSE})
    def destroy(self, request: Request, uuid: str) -> Response:
        subscription = self.get_object()
        delete_event_subscription(subscription, broker=ManagementClient.from_settings())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=EventSubscriptionQueueInputSerializer,
        responses={
            200: EventSubscriptionQueueOutputSerializer,
            201: EventSubscriptionQueueOutputSerializer,
            503: BROKER_UNAVAILABLE_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"])
    def create_queue(self, request: Request, uuid: str) -> Response:
        """Get or create the queue for an offering and object type, declared on the broker."""
        subscription = self.get_object()
        data = validated_input(EventSubscriptionQueueInputSerializer, request.data)
        offering = find_queue_offering(subscription, data["offering_uuid"], user=request.user)  # type: ignore[arg-type]
        if offering is None:
            raise ValidationError({"offering_uuid": ["Offering not found."]})
        queue, created = create_subscription_queue(
            subscription,
            offering=offering,
            object_type=data["object_type"],
            broker=ManagementClient.from_settings(),
        )
        return self.respond(queue, EventSubscriptionQueueOutputSerializer, creation_status(created))


@extend_schema(tags=["event-subscription-queues"])
class EventSubscriptionQueueViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, AgentObjectViewSet
):
    serializer_class = EventSubscriptionQueueOutputSerializer

    def visible_queryset(self, user: User) -> QuerySet[EventSubscriptionQueue]:
        return list_visible_subscription_queues(user)

    def all_objects(self) -> QuerySet[EventSubscriptionQueue]:
        return EventSubscriptionQueue.objects.select_related(
            "event_subscription__user", "event_subscription__agent_identity", "offering"
        )
