"""Per-user limits on the agents' write path, so one misbehaving agent cannot starve others."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView


class AgentWriteThrottle(UserRateThrottle):
    """Writes per user (token) per period, from AGENT_WRITE_THROTTLE_RATE; reads are free."""

    scope = "agent_write"

    def get_rate(self) -> str | None:
        return settings.AGENT_WRITE_THROTTLE_RATE or None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
