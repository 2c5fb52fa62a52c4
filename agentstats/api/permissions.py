"""The roles every feature shares: staff and support read the whole fleet."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from agentstats.models import User


def is_global_reader(user: User) -> bool:
    """Staff and support read every agent."""
    return bool(user.is_staff or user.is_support)


class IsStaffOrSupport(BasePermission):
    """Only staff and support users."""

    message = "Only staff and support users may see the whole fleet."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and is_global_reader(user))
