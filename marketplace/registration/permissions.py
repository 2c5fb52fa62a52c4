"""Who may act on an agent's objects: staff and support read any; writes need a manager."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from agentstats.api.permissions import is_global_reader
from marketplace.access import can_manage_object


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
