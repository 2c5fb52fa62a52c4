"""URL configuration: the API under /api/, the admin, the schema and its docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentstats.dashboard_views import fleet_dashboard_view, fleet_table_view
from agentstats.metrics_views import metrics_view
from agentstats.views import ConnectionStatsDetailView, ConnectionStatsView

urlpatterns = [
    # Before admin/: the dashboard admits support users, whom the admin site does not.
    path("admin/fleet/", fleet_dashboard_view, name="fleet-dashboard"),
    path("admin/fleet/table/", fleet_table_view, name="fleet-dashboard-table"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path(
        "api/marketplace-site-agent-connection-stats/",
        ConnectionStatsView.as_view(),
        name="connection-stats",
    ),
    re_path(
        # Any segment: a malformed uuid gets the API's JSON 404, not Django's HTML page.
        r"^api/marketplace-site-agent-connection-stats/(?P<uuid>[^/]+)/$",
        ConnectionStatsDetailView.as_view(),
        name="connection-stats-detail",
    ),
    path("api/", include("marketplace.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
]
