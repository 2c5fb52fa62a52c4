"""Who may do what: staff and support read everything, staff write everything, and
customer owners and identity creators manage their own agents."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from marketplace.selectors import can_manage_object, is_global_reader


class IsStaffOrSupport(BasePermission):
    """Only staff and support users."""

    message = "Only staff and support users may see the whole fleet."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and is_global_reader(user))


class IsAgentManagerOrReader(BasePermission):
    """Staff/support read any agent object; writes need a manager of that agent."""

    message = "You do not manage this agent."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        user = request.user
        if request.method in SAFE_METHODS and is_global_reader(user):  # type: ignore[arg-type]
            return True
        return can_manage_object(user, obj)  # type: ignore[arg-type]
