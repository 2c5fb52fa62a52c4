"""The fleet dashboard pages under /admin/fleet/: open to staff and to support users.

The admin site itself stays staff-only; support users sign in through the admin login
form (see agentstats/admin.py) and may read this dashboard and nothing else there.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from agentstats.api.permissions import is_global_reader
from agentstats.models import User
from marketplace.dashboard.context import (
    FleetTable,
    can_open_agent_admin,
    list_filter_choices,
    load_fleet_table,
    read_filter_values,
)
from rmq.client import ManagementClient

View = Callable[[HttpRequest], HttpResponse]
# Marks an answer as the dashboard's own table, so the page never swaps in a proxy's
# error page.
FRAGMENT_HEADER = "X-Fleet-Table"


def fleet_reader_required(view: View) -> View:
    """Send anonymous users to the admin login; refuse (403) anyone but staff and support."""

    @wraps(view)
    def checked(request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (isinstance(user, User) and user.is_active and is_global_reader(user)):
            raise PermissionDenied("Only staff and support users may see the fleet.")
        return view(request)

    return checked


@never_cache
@require_GET
@fleet_reader_required
def fleet_dashboard_view(request: HttpRequest) -> HttpResponse:
    """The dashboard: filters and a fleet table that refreshes itself in place."""
    table = _load_table(request)
    context = {
        **admin.site.each_context(request),
        "title": "Fleet dashboard",
        "table": table,
        "filters": read_filter_values(request.GET),
        "choices": list_filter_choices(),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "admin/fleet/dashboard.html", context, status=table.status_code)


@never_cache
@require_GET
@fleet_reader_required
def fleet_table_view(request: HttpRequest) -> HttpResponse:
    """The fleet table alone, fetched by the dashboard page to refresh itself."""
    table = _load_table(request)
    response = render(request, "admin/fleet/table.html", {"table": table}, status=table.status_code)
    response[FRAGMENT_HEADER] = "1"
    return response


def _load_table(request: HttpRequest) -> FleetTable:
    user = request.user
    return load_fleet_table(
        request.GET,
        broker=ManagementClient.from_settings(),
        is_admin_linked=isinstance(user, User) and can_open_agent_admin(user),
    )
