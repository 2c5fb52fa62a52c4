"""GET /metrics: the Prometheus exposition, for a scraper with the token or on an allowed
network.

A plain Django view rather than an APIView: scrapers negotiate Prometheus text or
OpenMetrics formats, which DRF's content negotiation would refuse, and the endpoint is no
part of the REST API or its schema.
"""

from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from marketplace.metrics.registry import build_metrics_registry, is_metrics_request_allowed
from rmq.client import ManagementClient

FORBIDDEN = {
    "detail": "Metrics need the metrics token or a client on an allowed network.",
    "code": "permission_denied",
}


@never_cache
@require_safe
def metrics_view(request: HttpRequest, job_names: Sequence[str] = ()) -> HttpResponse:
    """Fleet gauges, broker snapshot health and the last runs of `job_names` (the URL conf
    passes the registered jobs'); answers 200 during a broker outage too."""
    if not is_metrics_request_allowed(
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        token=settings.METRICS_TOKEN,
        allowed_networks=settings.METRICS_ALLOWED_NETWORKS,
    ):
        return JsonResponse(FORBIDDEN, status=403)
    registry = build_metrics_registry(broker=ManagementClient.from_settings(), job_names=job_names)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry), content_type=content_type)
