"""Every feature's routes (trailing slashes everywhere: the SDK follows no redirect)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from agentstats.api.health import answer_healthz
from marketplace.agent_logs.views import AgentLogViewSet
from marketplace.envelope.readiness import answer_readyz
from marketplace.envelope.views import AgentConnectionViewSet
from marketplace.jobs.registry import JOB_NAMES
from marketplace.registration.cleanup_views import (
    CleanupOrphanedIdentitiesView,
    CleanupStaleServicesView,
)
from marketplace.registration.subscription_views import (
    EventSubscriptionQueueViewSet,
    EventSubscriptionViewSet,
)
from marketplace.registration.views import (
    AgentIdentityViewSet,
    AgentProcessorViewSet,
    AgentServiceViewSet,
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
router.register("marketplace-site-agent-logs", AgentLogViewSet, basename="agent-log")

urlpatterns = [
    # The probes, without a trailing slash like /metrics: agentstats.api.health.PROBE_PATHS.
    path("healthz", answer_healthz, name="healthz"),
    path("readyz", answer_readyz, name="readyz"),
    path("admin/fleet/", include("marketplace.dashboard.urls")),
    # /metrics reports one series per registered background job.
    path("metrics", include("marketplace.metrics.urls"), {"job_names": JOB_NAMES}),
    path("api/", include("marketplace.stats.urls")),
    path("api/", include("marketplace.platform.urls")),
    path(
        "api/marketplace-site-agent-services/cleanup_stale/",
        CleanupStaleServicesView.as_view(),
        name="agent-service-cleanup-stale",
    ),
    path(
        "api/marketplace-site-agent-identities/cleanup_orphaned/",
        CleanupOrphanedIdentitiesView.as_view(),
        name="agent-identity-cleanup-orphaned",
    ),
    path("api/", include(router.urls)),
]
