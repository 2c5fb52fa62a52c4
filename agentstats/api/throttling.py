"""Per-user limits on the agents' write path, so one misbehaving agent cannot starve others."""

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView


class AgentWriteThrottle(UserRateThrottle):
    """Writes per user (token) per period, from AGENT_WRITE_THROTTLE_RATE; reads are free.

    Counted in the default cache (DRF's throttles use it): shared by every worker only when
    CACHE_URL names Redis; see describe_process_local_throttle.
    """

    scope = "agent_write"

    def get_rate(self) -> str | None:
        return settings.AGENT_WRITE_THROTTLE_RATE or None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def describe_process_local_throttle() -> str | None:
    """Why the write throttle is weaker than it says, when its counts live in each process
    (the local-memory cache of an unset CACHE_URL), or None when they are shared."""
    if not settings.AGENT_WRITE_THROTTLE_RATE or not isinstance(
        caches[DEFAULT_CACHE_ALIAS], LocMemCache
    ):
        return None
    return (
        f"AGENT_WRITE_THROTTLE_RATE ({settings.AGENT_WRITE_THROTTLE_RATE}) is counted in each "
        "server process: the cache is local memory (CACHE_URL unset), so a server with N "
        "worker processes lets a client make up to N times that many writes."
    )
