"""Liveness probe: GET /healthz answers while the process serves requests.

A plain Django view: no authentication, no throttle, no session, no database and no
broker, so it answers whatever the state of the services behind it. Readiness (the
database answers) is GET /readyz, served by the connection envelope, which knows the
observer's view of the broker.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

# The probes' paths: exempt from the HTTPS redirect and from the request log.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


@require_safe
def answer_healthz(request: HttpRequest) -> JsonResponse:
    """200 {"status": "ok"} for as long as the process serves."""
    return JsonResponse({"status": "ok"})
