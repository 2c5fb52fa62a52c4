"""The project's URLs: the admin, the schema and its docs, and the features' routes.

The features are included by dotted path, so this core package never imports them.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    # First: the fleet dashboard under admin/fleet/ admits support users, whom the admin
    # site does not.
    path("", include("marketplace.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
]

# Unknown API paths (upstream endpoints this service does not answer) get the JSON 404.
handler404 = "agentstats.api.errors.answer_not_found"
