"""The agent's reads (trailing slashes: the SDK follows no redirect)."""

from django.urls import path, re_path

from marketplace.platform.views import (
    CurrentUserView,
    ProviderOfferingDetailView,
    ServiceProviderListView,
    VersionView,
)

urlpatterns = [
    path("version/", VersionView.as_view(), name="version"),
    path("users/me/", CurrentUserView.as_view(), name="user-me"),
    re_path(
        # Any segment: a malformed uuid gets the API's JSON 404.
        r"^marketplace-provider-offerings/(?P<uuid>[^/]+)/$",
        ProviderOfferingDetailView.as_view(),
        name="provider-offering-detail",
    ),
    path(
        "marketplace-service-providers/",
        ServiceProviderListView.as_view(),
        name="service-provider-list",
    ),
]
