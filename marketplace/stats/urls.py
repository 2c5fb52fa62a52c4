"""The connection stats: the fleet and one agent."""

from django.urls import path, re_path

from marketplace.stats.views import ConnectionStatsDetailView, ConnectionStatsView

urlpatterns = [
    path(
        "marketplace-site-agent-connection-stats/",
        ConnectionStatsView.as_view(),
        name="connection-stats",
    ),
    re_path(
        # Any segment: a malformed uuid gets the API's JSON 404, not Django's HTML page.
        r"^marketplace-site-agent-connection-stats/(?P<uuid>[^/]+)/$",
        ConnectionStatsDetailView.as_view(),
        name="connection-stats-detail",
    ),
]
