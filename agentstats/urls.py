"""URL configuration: the API under /api/, the admin, the schema and its docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentstats.metrics_views import metrics_view
from agentstats.views import ConnectionStatsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path(
        "api/marketplace-site-agent-connection-stats/",
        ConnectionStatsView.as_view(),
        name="connection-stats",
    ),
    path("api/", include("marketplace.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
]
