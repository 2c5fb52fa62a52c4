"""The Prometheus exposition, at /metrics."""

from django.urls import path

from marketplace.metrics.views import metrics_view

urlpatterns = [path("", metrics_view, name="metrics")]
