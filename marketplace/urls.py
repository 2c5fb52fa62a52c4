"""Routes of the site-agent API (trailing slashes everywhere: the SDK follows no redirect)."""

from rest_framework.routers import DefaultRouter

from marketplace.envelope_views import AgentConnectionViewSet
from marketplace.views import (
    AgentIdentityViewSet,
    AgentProcessorViewSet,
    AgentServiceViewSet,
    EventSubscriptionQueueViewSet,
    EventSubscriptionViewSet,
    UserViewSet,
)

router = DefaultRouter()
router.register(
    "marketplace-site-agent-identities", AgentIdentityViewSet, basename="agent-identity"
)
router.register("marketplace-site-agent-services", AgentServiceViewSet, basename="agent-service")
router.register(
    "marketplace-site-agent-processors", AgentProcessorViewSet, basename="agent-processor"
)
router.register("event-subscriptions", EventSubscriptionViewSet, basename="event-subscription")
router.register(
    "event-subscription-queues", EventSubscriptionQueueViewSet, basename="event-subscription-queue"
)
router.register("users", UserViewSet, basename="user")
router.register("agents", AgentConnectionViewSet, basename="agent-connection")

urlpatterns = router.urls
