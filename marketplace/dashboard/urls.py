"""The fleet dashboard's pages, under admin/fleet/."""

from django.urls import path

from marketplace.dashboard.views import fleet_dashboard_view, fleet_table_view

urlpatterns = [
    path("", fleet_dashboard_view, name="fleet-dashboard"),
    path("table/", fleet_table_view, name="fleet-dashboard-table"),
]
