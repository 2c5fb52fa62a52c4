"""Services whose processors stopped running are Idle (upstream's
mark_agent_services_as_inactive)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max

from marketplace.models import AgentService
from marketplace.names import AgentServiceState


def mark_idle_services(*, now: datetime) -> int:
    """Mark Idle every Active service whose newest processor run is
    AGENT_SERVICE_IDLE_AFTER_SECONDS old or older; return how many.

    As upstream: a service without processors (or whose processors never ran) is left as
    it is, Error and Idle services are left alone, and `modified` moves. The agent's next
    register_service sets the service Active again.
    """
    threshold = now - timedelta(seconds=settings.AGENT_SERVICE_IDLE_AFTER_SECONDS)
    silent = (
        AgentService.objects.filter(state=AgentServiceState.ACTIVE)
        .annotate(last_processor_run=Max("processors__last_run"))
        .filter(last_processor_run__lte=threshold)
        .values_list("pk", flat=True)
    )
    return AgentService.objects.filter(pk__in=list(silent), state=AgentServiceState.ACTIVE).update(
        state=AgentServiceState.IDLE, modified=now
    )
